"""What becomes of exceptions: a checker that raises yields an "unknown" check; a scenario
that raises errors with its kind and traceback while the session goes on; an interrupt
still stops everything. Nothing here starts a process: `_run` is replaced by fakes."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from harness.checkers.base import CheckResult
from harness.errors import (
    ComponentStartError,
    ConfigError,
    FaultError,
    SteadyStateNotReached,
)
from harness.evaluation import check_safe, evaluate
from harness.history import History, read_history
from harness.results import exit_code
from harness.runner import ScenarioRun
from harness.scenario import Scenario
from harness.session import run_scenarios
from harness.settings import RunSettings
from tests.unit.test_evaluation import ROW, collected

# -- check-safe ------------------------------------------------------------------------------


def test_check_safe_passes_a_result_through() -> None:
    result = CheckResult("progress", True, "10 of 10")
    assert check_safe("progress", lambda: result) is result


def test_a_checker_that_raises_is_unknown_with_type_message_and_place() -> None:
    def broken() -> CheckResult:
        return {}["version"]  # type: ignore[no-any-return]

    check = check_safe("effect_once", broken)
    assert (check.name, check.ok, check.status) == ("effect_once", False, "unknown")
    assert check.details.startswith("checker raised KeyError: 'version' (at "
                                    "test_scenario_errors.py:")


def test_check_safe_lets_an_interrupt_through() -> None:
    def interrupted() -> CheckResult:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        check_safe("x", interrupted)


def test_one_broken_record_makes_that_check_unknown_and_the_others_still_judge() -> None:
    # A source row without its name: the convergence checker raises, the others run.
    row = {k: v for k, v in ROW.items() if k != "name"}
    evaluation = evaluate(collected(source=[row]))
    statuses = {c.name: c.status for c in evaluation.checks}
    assert statuses["convergence"] == "unknown"
    assert [s for s in statuses.values() if s == "unknown"] == ["unknown"]
    assert statuses["no_stale_overwrite"] == "pass"
    convergence = next(c for c in evaluation.checks if c.name == "convergence")
    assert convergence.details.startswith("checker raised KeyError: 'name' (at ")


# -- a scenario's exceptions ---------------------------------------------------------------


def fake_run(body: Callable[[ScenarioRun, History], None]) -> Any:
    def _run(self: ScenarioRun, _stack: ExitStack, history: History) -> None:
        body(self, history)
    return _run


def scenario(name: str = "s") -> Scenario:
    return Scenario(name=name, description="test")


def execute(tmp_path: Path, body: Callable[[ScenarioRun, History], None],
            monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    monkeypatch.setattr(ScenarioRun, "_run", fake_run(body))
    said: list[str] = []
    run = ScenarioRun(scenario(), RunSettings(seed=1), tmp_path, said.append)
    return run.execute(), said


def test_an_unexpected_exception_is_an_internal_error_with_its_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def body(_run: ScenarioRun, _history: History) -> None:
        # What a failed `assert` in sut.py raises (pytest would rewrite a real one here).
        raise AssertionError("sut.py expected a queue")

    result, said = execute(tmp_path, body, monkeypatch)
    assert result.verdict == "error"
    assert (result.error, result.error_kind) == ("AssertionError: sut.py expected a queue",
                                                 "internal")
    traceback_text = (tmp_path / "s" / "error.txt").read_text()
    assert traceback_text.startswith("Traceback (most recent call last):")
    assert "sut.py expected a queue" in traceback_text
    assert said == [f"error: AssertionError: sut.py expected a queue (traceback in "
                    f"{tmp_path / 's' / 'error.txt'})"]


def test_a_harness_error_before_the_steady_state_is_a_setup_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def body(_run: ScenarioRun, _history: History) -> None:
        raise ComponentStartError("broker", "port in use")

    result, _ = execute(tmp_path, body, monkeypatch)
    assert result.error_kind == "setup"
    assert result.error == "ComponentStartError: broker did not become ready: port in use"
    assert exit_code([result]) == 2


def test_a_steady_state_that_is_not_reached_is_a_setup_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def body(_run: ScenarioRun, _history: History) -> None:
        raise SteadyStateNotReached("steady state not reached before the first fault: ...")

    result, _ = execute(tmp_path, body, monkeypatch)
    assert result.error_kind == "setup"


def test_a_harness_error_after_the_steady_state_is_a_run_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def body(run: ScenarioRun, _history: History) -> None:
        run.setting_up = False  # what a shown steady state does
        raise FaultError("could not heal link_down")

    result, _ = execute(tmp_path, body, monkeypatch)
    assert (result.error, result.error_kind) == ("FaultError: could not heal link_down", "run")
    assert exit_code([result]) == 1


def test_an_interrupt_propagates_and_the_history_is_closed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def body(_run: ScenarioRun, history: History) -> None:
        history.record("op", ok=True)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(tmp_path, body, monkeypatch)
    assert [r["kind"] for r in read_history(tmp_path / "s" / "history.jsonl")] == ["op"]
    assert not (tmp_path / "s" / "error.txt").exists()


def test_the_session_goes_on_after_a_scenario_crashed(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def body(run: ScenarioRun, _history: History) -> None:
        if run.scenario.name == "first":
            raise KeyError("healed_at")
        run.result.checks = [CheckResult("progress", True, "ok")]

    monkeypatch.setattr(ScenarioRun, "_run", fake_run(body))
    result, report_dir = run_scenarios([scenario("first"), scenario("second")],
                                       RunSettings(seed=1, report_root=tmp_path))
    assert [s.verdict for s in result.scenarios] == ["error", "pass"]
    assert result.scenarios[0].error == "KeyError: 'healed_at'"
    assert result.exit_code == 1
    assert (report_dir / "first" / "error.txt").exists()
    assert (report_dir / "run.json").exists()


def test_the_same_scenario_twice_in_one_run_is_refused_before_anything_starts(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="named more than once: s"):
        run_scenarios([scenario(), scenario("t"), scenario()],
                      RunSettings(seed=1, report_root=tmp_path))
    assert list(tmp_path.iterdir()) == []
