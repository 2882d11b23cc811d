"""--db postgres without a server: settings, variant and scenario applicability, the
PostgreSQL node's pure parts, the publisher's commit-delay hook and the relay's read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from harness.brokers.registry import broker_plugin
from harness.errors import ConfigError
from harness.results import RunResult
from harness.runtime import postgres_node
from harness.runtime.base import Endpoint
from harness.scenario import Scenario
from harness.session import load_catalogue
from harness.settings import RunSettings
from harness.variants import resolve_variant
from reference_services.common.db import make_engines
from reference_services.publisher.commit_delay import CommitDelay
from reference_services.publisher.models import outbox
from reference_services.publisher.relay import Relay
from reference_services.publisher.store import ProductStore

RABBITMQ = broker_plugin("rabbitmq").capabilities


def test_db_defaults_to_sqlite_and_rejects_unknown() -> None:
    assert RunSettings(seed=1).db == "sqlite"
    with pytest.raises(ConfigError, match=r"--db.*mysql"):
        RunSettings(seed=1, db="mysql")


def test_postgres_missing_is_a_config_error_naming_the_package(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.settings.find_postgres", lambda: None)
    with pytest.raises(ConfigError, match="apt-get install -y postgresql"):
        RunSettings(seed=1, db="postgres", runtime="processes")
    # The containers runtime runs the image's PostgreSQL: the host needs none.
    assert RunSettings(seed=1, db="postgres", runtime="containers").db == "postgres"


def test_relay_by_sequence_only_exists_only_on_postgres() -> None:
    with pytest.raises(ConfigError, match=r"cannot show on sqlite.*--db postgres"):
        resolve_variant("relay_by_sequence_only", "rabbitmq", "sqlite")
    variant = resolve_variant("relay_by_sequence_only", "rabbitmq", "postgres")
    assert variant is not None and variant.service == "publisher"
    assert variant.caught_by("rabbitmq") == ("outbox_commit_order",)
    # Every other variant exists on both databases.
    assert resolve_variant("dual_write", "rabbitmq", "sqlite") is not None


@pytest.mark.parametrize("name", ["outbox_commit_order", "network_faults_consumer_db"])
def test_postgres_scenarios_are_not_applicable_on_sqlite(name: str) -> None:
    scenario = load_catalogue()[name]
    assert "--db postgres" in scenario.not_applicable_on(RABBITMQ, "sqlite")
    assert scenario.not_applicable_on(RABBITMQ, "postgres") == ""
    assert load_catalogue()["steady_state"].not_applicable_on(RABBITMQ, "sqlite") == ""


def test_scenario_dbs_must_be_known() -> None:
    with pytest.raises(ConfigError, match="dbs"):
        Scenario("x", "y", dbs=("oracle",))
    with pytest.raises(ConfigError, match="dbs"):
        Scenario("x", "y", dbs=())


def test_run_json_records_the_db_and_replays_with_it() -> None:
    run = RunResult("r1", 7, "rabbitmq", "processes", "none", started_at=0.0, db="postgres")
    assert run.to_dict()["db"] == "postgres"
    assert run.replay_command().endswith("--db postgres")


def test_server_config_keeps_default_durability_and_listens_on_loopback(
        tmp_path: Path) -> None:
    config = postgres_node.server_config("127.0.0.1", 5433, tmp_path)
    assert "listen_addresses = '127.0.0.1'" in config and "port = 5433" in config
    assert "fsync" not in config and "synchronous_commit" not in config
    assert postgres_node.database_url(Endpoint("127.0.0.1", 5433), "consumer2") == \
        "postgresql+psycopg://rch@127.0.0.1:5433/consumer2"


def test_services_get_the_inside_view_and_the_harness_the_outside_one() -> None:
    endpoint = Endpoint("10.9.0.12", 5433, "postgres")
    assert postgres_node.database_url(endpoint.inside, "consumer") == \
        "postgresql+psycopg://rch@postgres:5433/consumer"
    assert postgres_node.database_url(endpoint, "consumer") == \
        "postgresql+psycopg://rch@10.9.0.12:5433/consumer"
    assert postgres_node.client_rule("10.9.0.0/24") == "host all all 10.9.0.0/24 trust\n"


def test_find_postgres_picks_the_newest_complete_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_node, "INSTALL_ROOT", tmp_path)
    assert postgres_node.find_postgres() is None
    for version, programs in (("13", ("initdb", "postgres")), ("16", ("initdb",))):
        (tmp_path / version / "bin").mkdir(parents=True)
        for program in programs:
            (tmp_path / version / "bin" / program).touch()
    assert postgres_node.find_postgres() == tmp_path / "13" / "bin"  # 16 lacks postgres


def test_reachable_by_needs_execute_on_every_parent(tmp_path: Path) -> None:
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    stranger = (os.getuid() + 4242, os.getgid() + 4242)
    (tmp_path / "a").chmod(0o755)
    assert postgres_node.reachable_by(inner / "x", *stranger) == \
        postgres_node.reachable_by(tmp_path / "x", *stranger)
    (tmp_path / "a").chmod(0o700)
    assert not postgres_node.reachable_by(inner / "x", *stranger)
    assert postgres_node.reachable_by(inner / "x", os.getuid(), os.getgid())


def test_commit_delay_holds_the_armed_number_and_counts_overtakers() -> None:
    delay = CommitDelay()
    delay.hold(lambda: pytest.fail("an unarmed hook asks nothing"))
    delay.arm(2, 0.0)
    for _ in range(3):
        delay.hold(lambda: 5)
    assert delay.state() == {"remaining": 0, "hold_s": 0.0, "held": 2, "overtaken": 10}


@pytest.mark.parametrize(("variant", "read"), [("none", [2]), ("relay_by_sequence_only", [])])
def test_relay_reads_unsent_rows_not_rows_after_its_position(
        tmp_path: Path, variant: str, read: list[int]) -> None:
    """Rows 1 and 3 were published; row 2 committed after 3 was (on PostgreSQL a lower
    sequence can): the correct relay still reads it, the naive one never will."""
    store = ProductStore(make_engines(f"sqlite:///{tmp_path}/p.db"))
    for name in ("a", "b", "c"):
        store.create({"name": name, "category": "x", "price": 1, "stock": 1})
    relay = Relay(store, "amqp://guest:guest@127.0.0.1:1/%2F", variant=variant)
    relay._mark_sent([1])
    relay._mark_sent([3])
    with store.engines.reader.connect() as conn:
        found = conn.execute(select(outbox.c.seq).where(relay._unsent())).scalars().all()
    assert list(found) == read
