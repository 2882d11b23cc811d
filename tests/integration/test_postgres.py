"""The reference services on PostgreSQL (--db postgres): a private server per scenario,
started and removed by the harness; the outbox relay is proven against commits out of
sequence order, and the naive relay is caught."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness.results import ScenarioResult
from harness.runtime.postgres_node import find_postgres
from harness.session import load_catalogue, run_scenarios
from harness.settings import RunSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(find_postgres() is None,
                                 reason="PostgreSQL is not installed (apt-get install "
                                        "postgresql)")]
SEED = 7


def run_on(db: str, name: str, root: Path, variant: str = "none",
           converge_timeout_s: float | None = None, broker: str = "rabbitmq") -> ScenarioResult:
    scenario = load_catalogue()[name]
    if converge_timeout_s is not None:
        scenario = dataclasses.replace(scenario, converge_timeout_s=converge_timeout_s)
    result, _ = run_scenarios([scenario], RunSettings(seed=SEED, variant=variant,
                                                      report_root=root, db=db,
                                                      broker=broker))
    return result.scenarios[0]


def clusters_left(root: Path) -> list[Path]:
    return list(root.rglob("PG_VERSION"))


def test_steady_state_on_postgres_and_nothing_left(leak_check: Path) -> None:
    scenario = run_on("postgres", "steady_state", leak_check)
    assert scenario.verdict == "pass", scenario.first_failure()
    assert (Path(scenario.report_dir) / "postgres.log").exists()
    assert clusters_left(leak_check) == []  # the leak_check fixture checks processes


# The relay is the same code on both brokers; only its publishing client differs.
BROKERS = ("rabbitmq", "kafka")


@pytest.mark.parametrize("broker", BROKERS)
def test_outbox_commit_order_passes_on_the_correct_relay(broker: str, leak_check: Path) -> None:
    scenario = run_on("postgres", "outbox_commit_order", leak_check, broker=broker)
    assert scenario.verdict == "pass", scenario.first_failure()
    assert scenario.faults and all(f["verified"] for f in scenario.faults)


@pytest.mark.parametrize("broker", BROKERS)
def test_relay_by_sequence_only_is_caught_naming_the_skipped_rows(broker: str,
                                                                   leak_check: Path) -> None:
    scenario = run_on("postgres", "outbox_commit_order", leak_check, broker=broker,
                      variant="relay_by_sequence_only", converge_timeout_s=8.0)
    assert scenario.verdict == "fail"
    failed = {c.name: c for c in scenario.checks if not c.ok}
    assert "no_lost_updates" in failed, scenario.first_failure()
    assert "never relayed from the outbox" in failed["no_lost_updates"].details
    assert "seq " in failed["no_lost_updates"].details  # names the rows it skipped
    assert "tap_matches_outbox" in failed


def test_outbox_commit_order_is_not_applicable_on_sqlite(leak_check: Path) -> None:
    scenario = run_on("sqlite", "outbox_commit_order", leak_check)
    assert scenario.verdict == "not_applicable"
    assert "--db postgres" in scenario.not_applicable


@pytest.mark.parametrize("broker", BROKERS)
def test_the_consumer_survives_faults_on_its_database_link(broker: str,
                                                           leak_check: Path) -> None:
    scenario = run_on("postgres", "network_faults_consumer_db", leak_check, broker=broker)
    assert scenario.verdict == "pass", scenario.first_failure()
    assert [f["target"] for f in scenario.faults] == ["consumer_db"] * 4
    assert all(f["verified"] for f in scenario.faults)
    # The consumer's own connections went through the link: its transactions failed there,
    # and it retried them (each event still applied once: the checks above).
    log = (Path(scenario.report_dir) / "consumer.log").read_text(errors="replace")
    assert "database unavailable" in log and "retrying the batch" in log


def test_ack_before_commit_loses_what_a_failed_transaction_held(leak_check: Path) -> None:
    scenario = run_on("postgres", "network_faults_consumer_db", leak_check,
                      variant="ack_before_commit", converge_timeout_s=8.0)
    assert scenario.verdict == "fail"
    failed = {c.name: c for c in scenario.checks if not c.ok}
    assert "no_lost_updates" in failed, scenario.first_failure()
    assert "lost updates" in failed["no_lost_updates"].details
