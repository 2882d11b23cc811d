"""`harness check`: a stored run judged again from its files alone, and every kind of bad
input answered with one line and exit code 2."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import harness.recheck
from harness import cli
from harness.checkers.base import CheckResult, inconclusive, unknown
from harness.collected import Collected
from harness.evaluation import Evaluation, evaluate
from harness.reporting import write_run_json
from harness.results import RunResult, ScenarioResult

ROW = {"id": 1, "name": "a", "category": "c", "price": 1, "stock": 2, "restricted_note": "",
       "version": 2}


@pytest.fixture(autouse=True)
def keep_sigterm_handler() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def collected(**overrides: Any) -> Collected:
    event = {"event_id": "e1", "type": "ProductUpserted", "aggregate_id": "1", "version": 2,
             "sequence": 1, "occurred_at": 10.0, "sent_at": 10.0}
    delivery = {"id": 1, "event_id": "e1", "aggregate_id": "1", "version": 2,
                "outcome": "applied", "occurred_at": 10.0, "committed_at": 10.01,
                "redelivered": False}
    base: dict[str, Any] = dict(
        ops=[{"ok": True}], source=[ROW], replica=[ROW], published=[event],
        deliveries=[delivery], dead_letters=[], broker_dead_letters=0, faults=[],
        faults_planned=0, converged_after_s=0.1, converge_timeout_s=10, settle_s=1)
    return Collected(**{**base, **overrides})


def store(root: Path, scenarios: list[tuple[ScenarioResult, Collected | None]],
          history: list[dict[str, Any]] | None = None) -> Path:
    """A run folder as `harness run` leaves it: run.json, and per scenario its history and
    (when it got to its checks) the collected data."""
    run = RunResult("r1", 7, "rabbitmq", "processes", "none", started_at=0.0)
    for result, data in scenarios:
        folder = root / "r1" / result.name
        folder.mkdir(parents=True)
        records = history or [{"t": 1.0, "kind": "scenario", "name": result.name, "seed": 7}]
        (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        if data is not None:
            data.save(folder)
            evaluation = evaluate(data)
            result.checks, result.faults = evaluation.checks, evaluation.faults
        run.scenarios.append(result)
    write_run_json(run, root / "r1")
    return root / "r1"


def fake_evaluate(monkeypatch: pytest.MonkeyPatch, *checks: CheckResult) -> None:
    monkeypatch.setattr(harness.recheck, "evaluate", lambda _c: Evaluation(list(checks), []))


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    return err


# -- re-judging -----------------------------------------------------------------------------


def test_a_stored_failure_fails_again_with_the_same_messages(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = store(tmp_path, [(ScenarioResult("truncated", 7, duration_s=3.0),
                                collected(replica=[{**ROW, "name": "trunc"}]))])
    stored = json.loads((run_dir / "run.json").read_text())["scenarios"][0]
    convergence = next(c for c in stored["checks"] if c["name"] == "convergence")
    assert not convergence["ok"]

    assert cli.main(["check", str(run_dir)]) == cli.EXIT_FAIL == 1
    out = capsys.readouterr().out
    assert out.startswith(f"harness check: re-judged {run_dir} from its stored files "
                          "(run r1, seed 7, variant none)\n")
    assert "\nFAIL           truncated " in out
    assert f"    [FAIL] convergence: {convergence['details']}\n" in out
    for check in stored["checks"]:
        assert f"{check['name']}: {check['details']}" in out
    assert out.endswith("0 of 1 passed; same verdicts and check messages as the run\n")


def test_one_scenario_folder_and_run_json_are_accepted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = store(tmp_path, [(ScenarioResult("truncated", 7),
                                collected(replica=[{**ROW, "name": "trunc"}])),
                               (ScenarioResult("clean", 7), collected())])
    assert cli.main(["check", str(run_dir / "truncated")]) == 1
    out = capsys.readouterr().out
    assert "truncated" in out and "clean" not in out
    assert cli.main(["check", str(run_dir / "run.json")]) == 1
    out = capsys.readouterr().out
    assert "truncated" in out and "clean" in out


@pytest.mark.parametrize(("checks", "verdict", "code"), [
    ([CheckResult("progress", True, "all writes ok")], "PASS", 0),
    ([inconclusive("integrity_restored", "nothing diverged")], "INCONCLUSIVE", 3),
    ([unknown("effect_once", "checker raised KeyError: 'x'")], "ERROR", 1),
])
def test_exit_code_follows_the_rejudged_verdict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        checks: list[CheckResult], verdict: str, code: int) -> None:
    run_dir = store(tmp_path, [(ScenarioResult("s", 7), collected())])
    fake_evaluate(monkeypatch, *checks)
    assert cli.main(["check", str(run_dir)]) == code
    out = capsys.readouterr().out
    assert f"\n{verdict:14} s " in out
    assert f"{checks[0].name}: {checks[0].details}" in out


def test_a_verdict_that_changed_since_the_run_is_pointed_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = store(tmp_path, [(ScenarioResult("s", 7),
                                collected(replica=[{**ROW, "name": "trunc"}]))])
    fake_evaluate(monkeypatch, CheckResult("convergence", True, "replica equals source"))
    assert cli.main(["check", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "    differs from the run: verdict fail then, pass now\n" in out
    assert "    differs from the run: check convergence: not ok (" in out
    assert "check progress: ok (" in out and ") then, absent now" in out
    assert out.endswith("1 of 1 passed; 1 scenario(s) judged differently from the run\n")


def test_judging_that_raises_is_an_error_with_its_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = store(tmp_path, [(ScenarioResult("s", 7), collected())])

    def broken(_c: Collected) -> Evaluation:
        raise KeyError("healed_at")

    monkeypatch.setattr(harness.recheck, "evaluate", broken)
    assert cli.main(["check", str(run_dir)]) == 1
    out, err = capsys.readouterr()
    assert "ERROR          s " in out and "KeyError: 'healed_at'" in out
    assert err.startswith("harness: judging s raised:\nTraceback")


def test_a_scenario_that_stopped_before_its_checks_repeats_its_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    errored = ScenarioResult("s", 7, error="FaultError: could not heal", error_kind="run")
    run_dir = store(tmp_path, [(errored, None)])
    assert cli.main(["check", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert "FaultError: could not heal  [not re-judged: the run stopped before its checks]" \
        in out


def test_a_failed_steady_state_is_rebuilt_from_the_history(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    history = [{"t": 1.0, "kind": "scenario", "name": "s", "seed": 7},
               {"t": 2.0, "kind": "steady_state", "before": "before the first fault",
                "ok": False, "details": "consumer processed 3 of the 9 events"}]
    errored = ScenarioResult("s", 7, error="SteadyStateNotReached: ...", error_kind="setup")
    run_dir = store(tmp_path, [(errored, None)], history)
    # Every scenario a set-up error: the environment is at fault, as for `harness run`.
    assert cli.main(["check", str(run_dir)]) == cli.EXIT_USAGE
    assert ("SteadyStateNotReached: steady state not reached before the first fault: "
            "consumer processed 3 of the 9 events") in capsys.readouterr().out


# -- bad input: one line, exit 2 ------------------------------------------------------------


def test_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: does not exist" in one_line_error(capsys)


def test_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                    ) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert cli.main(["check", str(tmp_path)]) == 2
    assert "is not a run: it holds neither run.json" in one_line_error(capsys)
    assert cli.main(["check", str(tmp_path / "notes.txt")]) == 2
    assert "is a file, not a run's folder" in one_line_error(capsys)


def test_a_malformed_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run.json").write_text('{"run_id": "r1", "scenarios": ')
    assert cli.main(["check", str(tmp_path)]) == 2
    assert "run.json: is not valid JSON" in one_line_error(capsys)


@pytest.mark.parametrize(("name", "text"), [("deliveries.json", "[{"),
                                            ("collected.json", '{"schema": 999}')])
def test_a_malformed_collected_file_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str) -> None:
    run_dir = store(tmp_path, [(ScenarioResult("s", 7), collected())])
    (run_dir / "s" / name).write_text(text)
    assert cli.main(["check", str(run_dir)]) == 2
    assert name in one_line_error(capsys)


def test_a_missing_scenario_folder_or_history(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = store(tmp_path, [(ScenarioResult("s", 7), collected())])
    (run_dir / "s" / "history.jsonl").write_text("not json\n")
    assert cli.main(["check", str(run_dir)]) == 2
    assert "history.jsonl:1: is not a JSON record" in one_line_error(capsys)
    (run_dir / "s" / "history.jsonl").unlink()
    assert cli.main(["check", str(run_dir)]) == 2
    assert "history.jsonl: is missing" in one_line_error(capsys)


def test_collected_data_missing_without_a_recorded_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = store(tmp_path, [(ScenarioResult("s", 7), collected())])
    (run_dir / "s" / "collected.json").unlink()
    assert cli.main(["check", str(run_dir)]) == 2
    assert "collected.json: is missing, and the run recorded no error" in \
        one_line_error(capsys)
