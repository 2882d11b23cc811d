"""A scenario's required share of planned writes: validated, stored with what was collected,
and judged by progress against the workload's plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checkers.run_checks import DEFAULT_MIN_WRITE_SHARE
from harness.collected import Collected
from harness.errors import ConfigError
from harness.evaluation import evaluate
from harness.scenario import Scenario
from scenarios import all_scenarios


@pytest.mark.parametrize("share", [0.0, 0.35, 1.0])
def test_a_share_between_0_and_1_is_accepted(share: float) -> None:
    assert Scenario("x", "test", min_write_share=share).min_write_share == share


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), float("inf")])
def test_a_share_outside_0_to_1_is_rejected(share: float) -> None:
    with pytest.raises(ConfigError) as info:
        Scenario("x", "test", min_write_share=share)
    assert info.value.field == "x.min_write_share"
    assert info.value.problem.startswith("must be between 0 and 1")


def test_only_scenarios_whose_faults_fail_writes_lower_the_share() -> None:
    lowered = {name for name, s in all_scenarios().items()
               if s.min_write_share < DEFAULT_MIN_WRITE_SHARE}
    assert "relay_crash_points" in lowered
    assert "steady_state" not in lowered and "duplicates" not in lowered


def test_the_plan_and_share_survive_a_stored_run(tmp_path: Path) -> None:
    stored = Collected(ops=[{"ok": True}] * 40, source=[], replica=[], published=[],
                       deliveries=[], dead_letters=[], broker_dead_letters=0, faults=[],
                       faults_planned=0, converged_after_s=0.1, converge_timeout_s=10,
                       settle_s=1, writes_planned=100, min_write_share=0.5)
    stored.save(tmp_path)
    loaded = Collected.load(tmp_path)
    assert (loaded.writes_planned, loaded.min_write_share) == (100, 0.5)
    progress = next(c for c in evaluate(loaded).checks if c.name == "progress")
    assert progress.status == "fail"
    assert progress.details == ("too little load: 40 of 100 planned writes succeeded "
                                "(40 attempted), the scenario requires 50% (50)")
