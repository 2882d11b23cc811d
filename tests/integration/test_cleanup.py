"""Nothing the harness starts outlives it: not after a pass, a failure, an interrupt, a
harness bug in the middle of a scenario, or a system that never reached its steady state."""

from __future__ import annotations

import dataclasses
import functools
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness import cli, steady_state
from harness.history import History, read_history
from harness.links import CONSUMER_BROKER
from harness.runner import ScenarioRun
from harness.scenario import Scenario
from harness.session import run_scenarios, select_scenarios
from harness.settings import RunSettings
from harness.sut import SystemUnderTest
from harness.workload import WorkloadSpec
from tests.integration.conftest import processes_started_under, sigint_as_at_a_terminal

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_load_stops_everything(tmp_path: Path, sig: signal.Signals) -> None:
    # A relative --report-dir, as the README's default "reports": every component runs in
    # its own working directory, so paths must be made absolute before they are handed on.
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "steady_state", "--seed", "5",
         "--report-dir", "reports"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=sigint_as_at_a_terminal)
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    try:
        for line in proc.stdout:
            seen.append(line)
            if "load:" in line or time.monotonic() > deadline:
                break
        assert any("load:" in line for line in seen), "".join(seen)
        assert processes_started_under(tmp_path), "the run had started nothing to clean up"
        time.sleep(1.0)
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(seen) + output
    assert "interrupted" in output
    assert "Traceback" not in output
    assert processes_started_under(tmp_path) == []
    (run_json,) = tmp_path.glob("reports/*/run.json")
    assert json.loads(run_json.read_text())["interrupted"] is True


def _short_steady_state() -> Scenario:
    (scenario,) = select_scenarios(["steady_state"])
    return dataclasses.replace(scenario, workload=WorkloadSpec(duration_s=3.0))


def test_a_harness_bug_mid_scenario_errors_it_and_stops_everything(
        leak_check: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise KeyError("healed_at")  # as a bug in judging would

    monkeypatch.setattr(ScenarioRun, "_collect_and_check", crash)
    result, report_dir = run_scenarios([_short_steady_state()],
                                       RunSettings(seed=5, report_root=leak_check))
    (scenario,) = result.scenarios
    assert (scenario.verdict, scenario.error, scenario.error_kind) == \
        ("error", "KeyError: 'healed_at'", "internal")
    assert "raise KeyError" in (report_dir / "steady_state" / "error.txt").read_text()
    assert result.exit_code == 1
    assert processes_started_under(leak_check) == []


def test_a_system_that_does_not_replicate_errors_as_set_up(
        leak_check: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    prove = steady_state.prove
    monkeypatch.setattr(steady_state, "prove", functools.partial(prove, wait_s=2.0))
    original = ScenarioRun._prove_steady_state

    def cut_first(self: ScenarioRun, sut: SystemUnderTest, history: History,
                  before: str) -> None:
        sut.links.set_enabled(CONSUMER_BROKER, False)  # the consumer gets nothing more
        original(self, sut, history, before)

    monkeypatch.setattr(ScenarioRun, "_prove_steady_state", cut_first)
    result, report_dir = run_scenarios([_short_steady_state()],
                                       RunSettings(seed=5, report_root=leak_check))
    (scenario,) = result.scenarios
    assert scenario.error_kind == "setup"
    assert scenario.error.startswith("SteadyStateNotReached: steady state not reached "
                                     "halfway through the load: consumer processed ")
    assert scenario.checks == []
    assert result.exit_code == 2
    folder = report_dir / "steady_state"
    (record,) = [r for r in read_history(folder / "history.jsonl")
                 if r["kind"] == "steady_state"]
    assert record["ok"] is False and record["unprocessed"]["consumer"] > 0
    assert processes_started_under(leak_check) == []
    # Offline, the same error comes back from the history alone.
    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert cli.main(["check", str(folder)]) == 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert scenario.error in capsys.readouterr().out
