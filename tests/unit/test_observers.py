"""The observers' broker-neutral parts: tap records, the replica read from its database
file, and the sampler (with a fake reader)."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from harness.contract import replica
from harness.contract.envelope import Envelope
from harness.observers import ObservationError
from harness.observers.replica_db import matches_source, read_replica, sqlite_path
from harness.observers.sampler import ReplicaSampler
from harness.observers.tap import TapRecorder, TapStatus, record_message

EVENT = Envelope("e1", "StockAdjusted", "12", 7, 40, 1_000.5, 1, {"delta": 5, "stock": 62})


def test_a_tap_record_holds_the_events_identity_and_the_digest_of_its_bytes() -> None:
    body = EVENT.encode()
    record = record_message(body, True, 2_000.0)
    assert record["digest"] == hashlib.sha256(body).hexdigest()
    assert (record["event_id"], record["sequence"], record["aggregate_id"], record["version"],
            record["type"], record["payload"]) == ("e1", 40, "12", 7, "StockAdjusted",
                                                   {"delta": 5, "stock": 62})
    assert record["redelivered"] and record["received_at"] == 2_000.0
    assert record["unparseable"] is None


def test_an_unparseable_body_is_recorded_with_the_reason_not_dropped() -> None:
    record = record_message(b'{"event_id": "x"', False, 1.0)
    assert record["event_id"] is None
    assert "malformed JSON" in record["unparseable"]
    assert record["body_head"] == '{"event_id": "x"'


def test_the_recorder_is_bounded_and_the_status_says_when_it_overflowed() -> None:
    recorder = TapRecorder(max_records=2)
    for n in range(3):
        recorder.add({"n": n})
    assert [r["n"] for r in recorder.snapshot()] == [0, 1]
    assert recorder.overflow == 1 and recorder.count() == 3
    assert not TapStatus("q", drained=True, overflow=1).complete
    assert not TapStatus("q", drained=True, subscription_lost=True).complete
    assert TapStatus("q", drained=True).to_dict()["complete"]


def make_replica(path: Path, rows: list[tuple[Any, ...]]) -> str:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"CREATE TABLE {replica.TABLE} (id INTEGER PRIMARY KEY, name TEXT, "
                       "category TEXT, price INTEGER, stock INTEGER, restricted_note TEXT, "
                       "version INTEGER, deleted BOOLEAN, h1 INTEGER)")
    connection.executemany(f"INSERT INTO {replica.TABLE} VALUES (?,?,?,?,?,?,?,?,0)", rows)
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def test_the_replica_is_read_from_the_file_tombstones_included(tmp_path: Path) -> None:
    url = make_replica(tmp_path / "c.db", [(2, "b", "c", 5, 1, "", 3, 1),
                                           (1, "a", "c", 9, 4, "", 2, 0)])
    rows = read_replica(url)
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0] == {"id": 1, "name": "a", "category": "c", "price": 9, "stock": 4,
                       "restricted_note": "", "version": 2, "deleted": False}
    assert rows[1]["deleted"] is True and "h1" not in rows[1]


def test_reading_works_while_a_writer_holds_a_transaction(tmp_path: Path) -> None:
    url = make_replica(tmp_path / "c.db", [(1, "a", "c", 9, 4, "", 2, 0)])
    writer = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute(f"UPDATE {replica.TABLE} SET stock = 99")
    try:
        assert read_replica(url)[0]["stock"] == 4  # the last committed state
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_missing_or_foreign_database_is_an_observation_error(tmp_path: Path) -> None:
    with pytest.raises(ObservationError, match="does not exist"):
        read_replica(f"sqlite:///{tmp_path}/none.db")
    with pytest.raises(ObservationError, match="SQLite files"):
        sqlite_path("postgresql://db/orders")


def test_matches_source_compares_live_rows_field_by_field() -> None:
    source = [{"id": 1, "name": "a", "category": "c", "price": 9, "stock": 4,
               "restricted_note": "", "version": 2}]
    tombstone = {**source[0], "id": 2, "deleted": True}
    assert matches_source(source, [{**source[0], "deleted": False}, tombstone])
    assert not matches_source(source, [{**source[0], "stock": 5, "deleted": False}])
    assert not matches_source(source, [tombstone])


class FakeReplica:
    """Answers each read with the next state; the last one repeats."""

    def __init__(self, states: list[list[dict[str, Any]]]) -> None:
        self.states = states
        self.reads = 0

    def __call__(self) -> list[dict[str, Any]]:
        state = self.states[min(self.reads, len(self.states) - 1)]
        self.reads += 1
        return state


def product(version: int, stock: int) -> dict[str, Any]:
    return {"id": 1, "name": "a", "category": "c", "price": 9, "stock": stock,
            "restricted_note": "", "version": version, "deleted": False}


def run_sampler(sampler: ReplicaSampler, until: Any) -> None:
    sampler.start()
    deadline = time.monotonic() + 5
    while not until() and time.monotonic() < deadline:
        time.sleep(0.005)
    sampler.stop()


def test_the_sampler_keeps_only_rows_that_changed_with_the_read_time() -> None:
    fake = FakeReplica([[product(1, 10)], [product(1, 10)], [product(2, 15)]])
    ticks = iter(range(100, 10_000))
    sampler = ReplicaSampler(fake, interval_s=0.001, clock=lambda: float(next(ticks)))
    run_sampler(sampler, lambda: fake.reads >= 5)
    changes = sampler.changes()
    assert [(c["version"], c["t"]) for c in changes] == [(1, 100.0), (2, 102.0)]
    assert sampler.reads()[:3] == [100.0, 101.0, 102.0]
    assert sampler.status()["errors"] == 0


def test_the_sampler_stops_itself_at_its_bound_and_counts_read_errors() -> None:
    calls = 0

    def flaky() -> list[dict[str, Any]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ObservationError("locked")
        return [product(calls, calls)]

    sampler = ReplicaSampler(flaky, interval_s=0.001, max_changes=3)
    run_sampler(sampler, lambda: sampler.status()["stopped_because"] != "")
    status = sampler.status()
    assert status["errors"] == 1 and "locked" in status["last_error"]
    assert status["changes"] == 3 and "kept 3" in status["stopped_because"]
