"""The scenario catalogue on real RabbitMQ with real service processes, and the proof that
its checkers catch a real bug (docs/architecture.md, "Bug variants")."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.session import run_scenarios, select_scenarios
from harness.settings import RunSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(name: str, root: Path, variant: str = "none", **overrides: float):
    (scenario,) = select_scenarios([name])
    if overrides:
        scenario = dataclasses.replace(scenario, **overrides)
    settings = RunSettings(seed=20261122, variant=variant, report_root=root)
    result, report_dir = run_scenarios([scenario], settings)
    return result.scenarios[0], json.loads((report_dir / "run.json").read_text())


def _checks(scenario) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {c.name: c for c in scenario.checks}


def test_steady_state_converges_and_reports(leak_check: Path) -> None:
    scenario, run = _run("steady_state", leak_check)
    assert scenario.verdict == "pass", scenario.first_failure()
    metrics = run["scenarios"][0]["metrics"]
    assert run["seed"] == 20261122 and run["variant"] == "none"
    assert metrics["events_processed"] == metrics["events_published"] > 1000
    assert metrics["throughput_eps"] > 50
    assert 0 < metrics["lag_ms"]["p50"] <= metrics["lag_ms"]["p99"]
    report_dir = Path(scenario.report_dir).parent
    # One testcase per check, the scenario as its class.
    junit = (report_dir / "junit.xml").read_text()
    assert junit.count('<testcase classname="steady_state"') == len(scenario.checks) > 1
    assert (report_dir / "index.html").exists()
    history = (Path(scenario.report_dir) / "history.jsonl").read_text().splitlines()
    kinds = {json.loads(line)["kind"] for line in history}
    assert {"scenario", "lifecycle", "op", "check", "final_state"} <= kinds


def test_consumer_crash_is_harmless_on_correct_services(leak_check: Path) -> None:
    scenario, _run_json = _run("consumer_crash", leak_check)
    assert scenario.verdict == "pass", scenario.first_failure()
    checks = _checks(scenario)
    assert checks["fault_was_active"].ok
    assert len(scenario.faults) == 3 and all(f["verified"] for f in scenario.faults)
    # The kills landed while messages were unacknowledged: the broker redelivered them, and
    # effect_once proves the redeliveries were harmless.
    assert scenario.metrics["redelivered"] > 0
    assert checks["effect_once"].ok


def test_consumer_crash_catches_ack_before_commit(leak_check: Path) -> None:
    scenario, run = _run("consumer_crash", leak_check, variant="ack_before_commit",
                         converge_timeout_s=8.0)
    assert scenario.verdict == "fail"
    assert run["verdict"] == "fail" and run["variant"] == "ack_before_commit"
    checks = _checks(scenario)
    assert not checks["no_lost_updates"].ok
    assert "lost updates" in checks["no_lost_updates"].details
    assert not checks["effect_once"].ok
    assert "never applied" in checks["effect_once"].details
    assert checks["no_lost_updates"].counterexample["lost_event_ids"]
