"""The real oracle's judgement, with the runner replaced by a fake result: only findings
count, the checks about the run itself do not."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.checkers.base import CheckResult, inconclusive
from harness.explore import live
from harness.explore.live import ScenarioOracle
from harness.explore.schedule import Example
from harness.explore.search import Outcome
from harness.results import RunResult, ScenarioResult
from harness.runtime.registry import PROCESSES
from harness.scenario import FaultStep
from harness.settings import RunSettings

EXAMPLE = Example(100, 6, (FaultStep("kill", "consumer", 2.0),))


def judged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checks: Sequence[CheckResult],
           error: str = "") -> tuple[Outcome, list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def fake_run(scenarios: Sequence[Any], settings: RunSettings, report_dir: Path,
                 progress: Any, **kept: Any) -> tuple[RunResult, Path]:
        calls.append({"names": [s.name for s in scenarios], "dir": report_dir,
                      "seed": settings.seed, "runtime": kept["runtime"].name,
                      "kept_broker": kept["kept_broker"]})
        result = RunResult("r", settings.seed, "rabbitmq", "processes", "none", 0.0)
        result.scenarios.append(ScenarioResult("explore", settings.seed, list(checks),
                                               error=error, report_dir=str(report_dir)))
        return result, report_dir

    monkeypatch.setattr(live, "run_scenarios", fake_run)
    oracle = ScenarioOracle(RunSettings(seed=9), tmp_path, PROCESSES)
    return oracle(EXAMPLE), calls


def test_findings_that_fail_make_a_failure(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    outcome, calls = judged(monkeypatch, tmp_path, [
        CheckResult("convergence", True, "ok"),
        CheckResult("no_lost_updates", False, "the broker tap saw 12 events never applied"),
        CheckResult("progress", False, "too little load")])
    assert outcome.failed == ("no_lost_updates",)
    assert outcome.describe() == "FAIL (no_lost_updates)"
    assert outcome.details == "the broker tap saw 12 events never applied"
    assert calls == [{"names": ["explore"], "dir": tmp_path / "run-001", "seed": 9,
                      "runtime": "processes", "kept_broker": None}]


def test_checks_about_the_run_itself_are_no_finding(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    outcome, _ = judged(monkeypatch, tmp_path, [
        CheckResult("convergence", True, "ok"),
        CheckResult("fault_was_active", False, "1 faults were not felt"),
        CheckResult("progress", False, "too little load"),
        inconclusive("integrity_restored", "no divergence")])
    assert outcome.failed == () and outcome.verdict == "fail"
    assert outcome.run_checks_failed == ("fault_was_active", "progress")
    assert outcome.describe() == "no finding (scenario fail: fault_was_active, progress)"


def test_an_error_is_no_finding_and_says_why(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    outcome, _ = judged(monkeypatch, tmp_path, [], error="SteadyStateNotReached: slow")
    assert (outcome.failed, outcome.verdict) == ((), "error")
    assert outcome.details == "SteadyStateNotReached: slow"
    assert outcome.describe() == "no finding (scenario error: SteadyStateNotReached: slow)"
