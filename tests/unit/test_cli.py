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
        cli.main(["run", "--broker", "kafka"])
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
