"""Every scenario of the catalogue passes on the correct services, with its faults proven
active, and every bug variant is caught by the scenario named for it
(docs/architecture.md, "Bug variants")."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.brokers.kept import KeptBroker
from harness.brokers.registry import broker_plugin
from harness.results import ScenarioResult
from harness.runtime.registry import PROCESSES
from harness.session import load_catalogue, run_scenarios
from harness.settings import RunSettings
from harness.variants import VARIANTS
from tests.integration.test_containers import in_processes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 424242
# Covered with more detail in test_scenarios_rabbitmq.py and test_new_scenarios.py.
COVERED_ELSEWHERE = {"steady_state", "consumer_crash", "publisher_crash",
                     "full_resync_under_load"}


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeptBroker]:
    """One RabbitMQ broker for the module's scenarios that leave the broker alone, each in
    a virtual host of its own, as `harness explore` runs them: it saves a broker start and
    stop per scenario. A scenario that faults the broker itself starts its own, as
    `harness run` does."""
    broker = KeptBroker(broker_plugin("rabbitmq"), PROCESSES,
                        tmp_path_factory.mktemp("kept") / "broker", "catalogue-kept")
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


def run_one(name: str, root: Path, variant: str = "none",
            converge_timeout_s: float | None = None, broker: str = "rabbitmq",
            seed: int = SEED, kept: KeptBroker | None = None) -> ScenarioResult:
    scenario = load_catalogue()[name]
    if converge_timeout_s is not None:
        # A variant that loses data never converges: no need to wait the full deadline.
        scenario = dataclasses.replace(scenario, converge_timeout_s=converge_timeout_s)
    if any(step.target == "broker" for step in scenario.faults):
        kept = None
    result, _ = run_scenarios([scenario], RunSettings(seed=seed, variant=variant,
                                                      report_root=root, broker=broker),
                              kept_broker=kept)
    return result.scenarios[0]


# Scenarios that need what RabbitMQ (or SQLite) lacks are reported not applicable, which
# test_capabilities.py and test_postgres.py cover; the rest must pass here.
APPLICABLE = sorted(name for name, scenario in load_catalogue().items()
                    if not scenario.not_applicable_on(broker_plugin("rabbitmq").capabilities,
                                                      "sqlite"))


@pytest.mark.parametrize("name", in_processes(sorted(set(APPLICABLE) - COVERED_ELSEWHERE)))
def test_scenario_passes_on_correct_services(name: str, leak_check: Path,
                                             kept: KeptBroker) -> None:
    scenario = run_one(name, leak_check, kept=kept)
    assert scenario.verdict == "pass", scenario.first_failure()
    checks = {c.name: c for c in scenario.checks}
    assert checks["progress"].ok and checks["convergence"].ok
    if load_catalogue()[name].faults:
        assert checks["fault_was_active"].ok
        assert scenario.faults and all(f["verified"] for f in scenario.faults)


# variant -> (scenario that must catch it, check that must fail, words naming the effect).
# ack_before_commit is covered in test_scenarios_rabbitmq.py.
VARIANT_CASES = {
    "mark_sent_before_confirm": ("network_faults_relay", "no_lost_updates", "lost updates"),
    "dual_write": ("broker_outage_stop", "no_lost_updates", "lost updates"),
    "no_dedupe": ("duplicates", "effect_once", "processed more than once"),
    "no_version_check": ("reordering", "no_stale_overwrite", "stale overwrites"),
    "poison_requeue_loop": ("poison_payloads", "accounting", "dead-lettered"),
    "truncate_names": ("steady_state", "convergence", "rows differ"),
    # The consumer lies in its own log: only the harness's observers can catch these.
    "log_lies_dedupe": ("duplicates", "version_consistency",
                        "not the source's state at their version"),
    "log_lies_stale": ("steady_state", "log_matches_observation", "was stale"),
    "skip_catch_up": ("full_resync_under_load", "no_lost_updates", "above the high-water mark"),
    # Named by the field and the path it leaked through, in the unauthorized replica.
    "fat_events": ("authorization", "restricted_data_contained[consumer2]",
                   "restricted_note values inside"),
    "open_admin": ("unauthorized_calls", "credentials_enforced", "did not refuse"),
    "export_leaks": ("authorization", "restricted_data_contained[consumer2]",
                     "through the full resync's export (GET /export"),
}


def test_every_variant_has_a_case() -> None:
    # Variants that exist on Kafka only have their cases in test_catalogue_kafka.py.
    on_rabbitmq = {name for name, v in VARIANTS.items() if "rabbitmq" in v.brokers}
    assert set(VARIANT_CASES) | {"ack_before_commit", "relay_by_sequence_only"} == on_rabbitmq
    for variant, (scenario, _check, _words) in VARIANT_CASES.items():
        assert scenario in VARIANTS[variant].caught_by("rabbitmq")


@pytest.mark.parametrize("variant", sorted(VARIANT_CASES))
def test_variant_is_caught(variant: str, leak_check: Path, kept: KeptBroker) -> None:
    assert_caught(variant, VARIANT_CASES[variant], leak_check, kept=kept)


def assert_caught(variant: str, case: tuple[str, str, str], root: Path,
                  broker: str = "rabbitmq", seed: int = SEED,
                  kept: KeptBroker | None = None) -> None:
    """The variant's scenario fails, with this check among the failed ones, naming the
    effect in these words."""
    name, check, words = case
    scenario = run_one(name, root, variant=variant, converge_timeout_s=8.0, broker=broker,
                       seed=seed, kept=kept)
    assert scenario.verdict == "fail"
    failed = {c.name: c for c in scenario.checks if not c.ok}
    assert check in failed, scenario.first_failure()
    assert words in failed[check].details
