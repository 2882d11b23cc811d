"""The catalogue on Kafka (a Tansu broker on S3 storage, a `tansu proxy` per link): every
scenario that applies there passes on the correct services, and `harness list --broker
kafka` names every one that does not, with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.brokers.registry import broker_plugin
from harness.session import load_catalogue
from tests.integration.test_catalogue_rabbitmq import run_one

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 818181
# Applicable on Kafka and passed with two seeds each.
RUN_HERE = ("steady_state", "consumer_crash", "relay_crash_points",
            "consumer_down_long", "broker_outage_pause", "network_faults_relay",
            "link_partition", "publisher_skips_events",
            "publisher_skips_events_auto", "consumer_bug", "late_joiner", "publisher_crash")
# Applicable on Kafka, not (yet) reliable there: none may be left out silently.
LEFT_OUT = {
    "broker_outage_kill": "after the restart the tap saw offsets skipped (10 at once) that "
                          "it cannot tell from lost records: inconclusive, never a pass",
    "broker_outage_stop": "as broker_outage_kill, in one run of two",
    "fan_out": "its 'unaffected' bound (lag < 1 s) is below Tansu-on-S3's own p99 lag",
    "broker_data_loss": "one seed of three: verification missed ids the harness found",
    "publisher_wrong_data": "one seed of two: verification missed 1 divergent id",
    "network_faults_publisher_api": "one seed of two: the latency fault's per-call average "
                                    "was diluted below its bound",
    # Passed every seed tried, but converged 14-16 s after the load against a 30 s deadline
    # (each restart waits ~11 s for the dead member's session to expire): too little margin
    # for CI until that wait is shortened.
    "consumer_crash_points": "passes, but converges 14-16 s into a 30 s deadline",
    "network_faults_consumer": "passes, but converged up to 16 s into a 30 s deadline",
}


def test_every_applicable_scenario_runs_here_or_says_why_not() -> None:
    offered = broker_plugin("kafka").capabilities
    applicable = {name for name, scenario in load_catalogue().items()
                  if not scenario.not_applicable_on(offered)}
    assert set(RUN_HERE) | set(LEFT_OUT) == applicable
    assert not set(RUN_HERE) & set(LEFT_OUT)


def test_run_here_lists_only_applicable_scenarios() -> None:
    offered = broker_plugin("kafka").capabilities
    catalogue = load_catalogue()
    assert all(not catalogue[name].not_applicable_on(offered) for name in RUN_HERE)


@pytest.mark.parametrize("name", RUN_HERE)
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
