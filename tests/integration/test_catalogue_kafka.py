"""The catalogue on Kafka (a Tansu broker on S3 storage, a `tansu proxy` per link): every
scenario that applies there passes on the correct services, and `harness list --broker
kafka` names every one that does not, with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.brokers.registry import broker_plugin
from harness.session import load_catalogue
from harness.variants import VARIANTS
from tests.integration.test_catalogue_rabbitmq import assert_caught, run_one
from tests.integration.test_containers import in_processes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 818181
# Applicable on Kafka and passed with two seeds each.
RUN_HERE = ("steady_state", "consumer_crash", "relay_crash_points",
            "consumer_down_long", "broker_outage_pause", "network_faults_relay",
            "link_partition", "publisher_skips_events",
            "publisher_skips_events_auto", "consumer_bug", "late_joiner", "publisher_crash",
            "group_rebalance", "offset_reset", "duplicates", "stale_redelivery",
            "poison_payloads", "competing_instances",
            "broker_outage_kill", "broker_outage_stop", "fan_out", "broker_data_loss",
            "network_faults_publisher_api", "consumer_crash_points",
            "network_faults_consumer", "publisher_wrong_data", "authorization",
            "unauthorized_calls")
# Applicable on Kafka, not (yet) reliable there, with the reason: none may be left out
# silently.
LEFT_OUT: dict[str, str] = {}


def test_every_applicable_scenario_runs_here_or_says_why_not() -> None:
    offered = broker_plugin("kafka").capabilities
    # On the default database; the PostgreSQL-only scenario runs on Kafka in
    # test_postgres.py.
    applicable = {name for name, scenario in load_catalogue().items()
                  if not scenario.not_applicable_on(offered, "sqlite")}
    assert set(RUN_HERE) | set(LEFT_OUT) == applicable
    assert not set(RUN_HERE) & set(LEFT_OUT)


def test_run_here_lists_only_applicable_scenarios() -> None:
    offered = broker_plugin("kafka").capabilities
    catalogue = load_catalogue()
    assert all(not catalogue[name].not_applicable_on(offered) for name in RUN_HERE)


@pytest.mark.parametrize("name", in_processes(RUN_HERE))
def test_scenario_passes_on_kafka(name: str, leak_check: Path) -> None:
    scenario = run_one(name, leak_check, broker="kafka", seed=SEED)
    assert scenario.verdict == "pass", scenario.first_failure()
    checks = {c.name: c for c in scenario.checks}
    assert checks["progress"].ok and checks["convergence"].ok
    if load_catalogue()[name].faults:
        assert checks["fault_was_active"].ok
        assert scenario.faults and all(f["verified"] for f in scenario.faults)


def test_list_names_every_scenario_kafka_cannot_run_with_a_reason(
        capsys: pytest.CaptureFixture[str]) -> None:
    offered = broker_plugin("kafka").capabilities
    not_applicable = {name: scenario.not_applicable_on(offered)
                      for name, scenario in load_catalogue().items()
                      if scenario.not_applicable_on(offered)}
    assert not_applicable  # what Kafka cannot do keeps some scenarios off it
    assert cli.main(["list", "--broker", "kafka"]) == 0
    listed = capsys.readouterr().out
    section = listed[listed.index("not applicable on kafka:"):]
    for name, reason in not_applicable.items():
        assert f"{name}" in section and reason in section, name


# variant -> (scenario that must catch it on Kafka, check that must fail, words naming the
# effect). Every variant that exists on Kafka and has a catching scenario there.
KAFKA_VARIANT_CASES = {
    "autocommit_offsets": ("consumer_crash", "no_lost_updates", "lost updates"),
    "offset_reset_latest": ("group_rebalance", "no_lost_updates", "lost updates"),
    "truncate_names": ("steady_state", "convergence", "rows differ"),
    "log_lies_stale": ("steady_state", "log_matches_observation", "was stale"),
    "no_dedupe": ("duplicates", "effect_once", "processed more than once"),
    "log_lies_dedupe": ("duplicates", "log_matches_observation", "without a new version"),
    "no_version_check": ("stale_redelivery", "no_stale_overwrite", "stale overwrites"),
    "poison_requeue_loop": ("poison_payloads", "accounting", "dead-lettered 0"),
    # librdkafka retries a send until its message timeout (2.5 s for the relay, 5 s for
    # dual_write): a broker outage of 5 s makes the sends caught in it fail, which these two
    # bugs turn into lost events.
    "mark_sent_before_confirm": ("broker_outage_kill", "no_lost_updates", "lost updates"),
    "dual_write": ("broker_outage_kill", "no_lost_updates", "lost updates"),
    "fat_events": ("authorization", "restricted_data_contained[consumer2]",
                   "restricted_note values inside"),
    "open_admin": ("unauthorized_calls", "credentials_enforced", "did not refuse"),
    "export_leaks": ("authorization", "restricted_data_contained[consumer2]",
                     "through the full resync's export (GET /export"),
}


def test_every_kafka_variant_has_a_case() -> None:
    caught_on_kafka = {name for name, v in VARIANTS.items() if v.caught_by("kafka")}
    # relay_by_sequence_only needs PostgreSQL: its Kafka case is in test_postgres.py.
    assert set(KAFKA_VARIANT_CASES) | {"relay_by_sequence_only"} == caught_on_kafka
    for variant, (scenario, _check, _words) in KAFKA_VARIANT_CASES.items():
        assert scenario in VARIANTS[variant].caught_by("kafka")


@pytest.mark.parametrize("variant", sorted(KAFKA_VARIANT_CASES))
def test_variant_is_caught_on_kafka(variant: str, leak_check: Path) -> None:
    assert_caught(variant, KAFKA_VARIANT_CASES[variant], leak_check, broker="kafka",
                  seed=SEED)


def test_offset_reset_fails_when_the_consumer_jumps_to_the_log_end(leak_check: Path) -> None:
    # The consumer's second catcher: it never notices its positions fell off the log.
    assert_caught("offset_reset_latest",
                  ("offset_reset", "fault_was_active", "reported no data loss"), leak_check,
                  broker="kafka", seed=SEED)
