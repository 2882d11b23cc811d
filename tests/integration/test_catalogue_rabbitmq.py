"""Every scenario of the catalogue passes on the correct services, with its faults proven
active, and every bug variant is caught by the scenario named for it (DESIGN.md s.5)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.results import ScenarioResult
from harness.session import load_catalogue, run_scenarios
from harness.settings import RunSettings
from harness.variants import VARIANTS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 424242
# Covered with more detail in test_scenarios_rabbitmq.py.
COVERED_ELSEWHERE = {"steady_state", "consumer_crash"}


def run_one(name: str, root: Path, variant: str = "none",
            converge_timeout_s: float | None = None) -> ScenarioResult:
    scenario = load_catalogue()[name]
    if converge_timeout_s is not None:
        # A variant that loses data never converges: no need to wait the full deadline.
        scenario = dataclasses.replace(scenario, converge_timeout_s=converge_timeout_s)
    result, _ = run_scenarios([scenario], RunSettings(seed=SEED, variant=variant,
                                                      report_root=root))
    return result.scenarios[0]


@pytest.mark.parametrize("name", sorted(set(load_catalogue()) - COVERED_ELSEWHERE))
def test_scenario_passes_on_correct_services(name: str, leak_check: Path) -> None:
    scenario = run_one(name, leak_check)
    assert scenario.verdict == "pass", scenario.first_failure()
    checks = {c.name: c for c in scenario.checks}
    assert checks["progress"].ok and checks["convergence"].ok
    if load_catalogue()[name].faults:
        assert checks["fault_was_active"].ok
        assert scenario.faults and all(f["verified"] for f in scenario.faults)


VARIANT_CASES = [(variant.name, scenario) for variant in VARIANTS.values()
                 for scenario in variant.caught_by[:1] if variant.name != "ack_before_commit"]


@pytest.mark.parametrize(("variant", "name"), VARIANT_CASES)
def test_variant_is_caught(variant: str, name: str, leak_check: Path) -> None:
    scenario = run_one(name, leak_check, variant=variant, converge_timeout_s=8.0)
    assert scenario.verdict == "fail"
    failed = {c.name: c for c in scenario.checks if not c.ok}
    assert "no_lost_updates" in failed, scenario.first_failure()
    assert "lost updates" in failed["no_lost_updates"].details
    assert "convergence" in failed
