"""Unit tests for the `harness` command line: everything here fails (or lists) during
validation, so no broker or service is ever started."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import harness.session
from harness import cli
from harness.checkers.base import CheckResult, inconclusive
from harness.results import RunResult, ScenarioResult


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run in a scratch directory, keep pytest's SIGTERM handler, and make sure nothing
    gets as far as starting a run."""
    monkeypatch.chdir(tmp_path)

    def no_run(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("run_scenarios must not be reached in a unit test")

    monkeypatch.setattr(harness.session, "run_scenarios", no_run)
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_list_prints_scenarios_and_variants(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == cli.EXIT_PASS == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert any(line.startswith("steady_state ") for line in lines)
    assert any(line.startswith("consumer_crash ") for line in lines)
    assert "variants (--variant):" in out
    assert "ack_before_commit" in out
    assert err == ""


def test_run_unknown_scenario_exits_2_and_points_to_list(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["run", "no_such_scenario", "--seed", "1"]) == cli.EXIT_USAGE == 2
    out, err = capsys.readouterr()
    assert err.startswith("harness: error: scenario: ")
    assert "no_such_scenario" in err
    assert "harness list" in err
    assert "steady_state" in err  # the known names are offered
    assert "Traceback" not in err + out
    assert list(tmp_path.iterdir()) == []  # no report directory was created


def test_run_with_some_unknown_scenarios_names_only_those(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "steady_state", "nope1", "nope2"]) == 2
    err = capsys.readouterr().err
    assert "unknown scenario(s) nope1, nope2" in err


def test_run_unknown_variant_exits_2_naming_the_option(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--variant", "bogus", "steady_state"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("harness: error: --variant: ")
    assert "'bogus'" in err
    assert "ack_before_commit" in err
    assert "Traceback" not in err + out


def test_run_negative_seed_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--seed", "-1", "steady_state"]) == 2
    assert "--seed" in capsys.readouterr().err


def test_argparse_rejects_unknown_broker(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--broker", "zeromq"])
    assert info.value.code == 2
    assert "--broker" in capsys.readouterr().err


def test_report_of_missing_path_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "/nonexistent"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("harness: error: /nonexistent does not exist")
    assert "report directory" in err
    assert out == ""


def test_report_prints_the_summary_of_a_stored_run(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    run = RunResult("r1", 99, "rabbitmq", "processes", "none", started_at=0.0)
    run.scenarios.append(ScenarioResult("steady_state", 99, error="SetupError: boom"))
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "run.json").write_text(json.dumps(run.to_dict()))
    assert cli.main(["report", str(tmp_path / "r1")]) == 0
    out = capsys.readouterr().out
    assert "seed=99" in out
    assert "replay: harness run steady_state --seed 99" in out
    assert cli.main(["report", str(tmp_path / "r1" / "run.json")]) == 0
    assert capsys.readouterr().out == out


def test_run_naming_a_scenario_twice_exits_2(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    assert cli.main(["run", "steady_state", "consumer_crash", "steady_state"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("harness: error: scenario: named more than once: steady_state (fix: name "
                   "each scenario once; to repeat one, run it again with another --seed)\n")
    assert list(tmp_path.iterdir()) == []


def test_report_dir_that_is_a_file_exits_2_in_one_line(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("")
    assert cli.main(["run", "steady_state", "--seed", "1", "--report-dir", "taken"]) == 2
    out, err = capsys.readouterr()
    assert err == (f"harness: error: --report-dir: {tmp_path / 'taken'} is a file, not a "
                   "directory (fix: give a directory you can write to (default: reports))\n")
    assert out == ""
    assert cli.main(["run", "steady_state", "--report-dir", "taken/below"]) == 2
    assert "Not a directory" in capsys.readouterr().err


def test_unwritable_report_dir_exits_2_in_one_line(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Root writes through permission bits, so the refusal is simulated at the probe write.
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(harness.session.tempfile, "TemporaryFile", refuse)
    assert cli.main(["run", "steady_state", "--report-dir", "ro"]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("harness: error: --report-dir: cannot write reports in ")
    assert err.endswith("/ro: Permission denied (fix: give a directory you can write to "
                        "(default: reports))\n")
    assert "Traceback" not in out + err


def test_an_os_error_anywhere_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError(28, "No space left on device", "/reports/r1/run.json")

    monkeypatch.setattr(harness.session, "run_scenarios", disk_full)
    assert cli.main(["run", "steady_state", "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err.endswith("harness: error: No space left on device (/reports/r1/run.json)\n")


@pytest.mark.parametrize(("text", "problem"), [
    ("{oops", "is not valid JSON"),
    ('{"run_id": "r1"}', "seed is missing"),
    ('{"run_id": "r1", "seed": 1, "broker": "b", "runtime": "p", "variant": "none", '
     '"replay": "", "scenarios": [{"name": "s"}]}', "scenarios[0].verdict is missing"),
])
def test_report_of_a_malformed_run_json_exits_2_in_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "run.json").write_text(text)
    assert cli.main(["report", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith(f"harness: error: {tmp_path / 'run.json'}: {problem}")
    assert err.count("\n") == 1 and out == ""


def _stored(*scenarios: ScenarioResult) -> Any:
    def fake_run(_scenarios: Any, settings: Any, progress: Any = None,
                 files: Any = None) -> Any:
        run = RunResult("r1", settings.seed, "rabbitmq", "processes", "none", started_at=0.0)
        run.scenarios.extend(scenarios)
        return run, Path("reports/r1")
    return fake_run


def _passed(name: str) -> ScenarioResult:
    return ScenarioResult(name, 1, checks=[CheckResult("progress", True, "ok")])


@pytest.mark.parametrize(("scenarios", "code"), [
    ([_passed("steady_state")], 0),
    ([_passed("steady_state"),
      ScenarioResult("consumer_crash", 1, checks=[inconclusive("c", "could not show")])], 3),
    ([_passed("steady_state"), ScenarioResult("consumer_crash", 1,
                                              checks=[CheckResult("c", False, "lost 3")])], 1),
    # A harness bug in one scenario: an error, the others still judged.
    ([_passed("steady_state"), ScenarioResult("consumer_crash", 1, error="KeyError: 'x'",
                                              error_kind="internal")], 1),
    # The message may say "SetupError"; the kind decides: this one ran and then broke.
    ([ScenarioResult("steady_state", 1, error="WaitTimeout: SetupError in text",
                     error_kind="run")], 1),
    ([ScenarioResult("steady_state", 1, error="ComponentStartError: rabbitmq",
                     error_kind="setup"),
      ScenarioResult("consumer_crash", 1, error="SteadyStateNotReached: ...",
                     error_kind="setup")], 2),
])
def test_run_exit_code_follows_verdicts_and_error_kinds(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        scenarios: list[ScenarioResult], code: int) -> None:
    monkeypatch.setattr(harness.session, "run_scenarios", _stored(*scenarios))
    names = [s.name for s in scenarios]
    assert cli.main(["run", *names, "--seed", "1"]) == code
    out = capsys.readouterr().out
    for scenario in scenarios:
        assert f"{scenario.verdict.upper():14} {scenario.name} " in out
    if code == 3:
        assert "1 of 2 passed, 1 inconclusive (seed 1)" in out
        assert "replay: harness run consumer_crash --seed 1" in out
