"""The consumer's verifier against a fake publisher (httpx MockTransport) and a real SQLite
replica: outcomes, bisection to the divergent ids, classification, and the spot check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.contract.dataset import summarize
from reference_services.common.db import make_engines
from reference_services.consumer import verifier as verifier_module
from reference_services.consumer.applier import Applier
from reference_services.consumer.models import metadata
from reference_services.consumer.verifier import Verifier


def row(pid: int, version: int = 1, name: str | None = None) -> dict[str, Any]:
    return {"id": pid, "name": name or f"product {pid}", "category": "books",
            "price": 100 + pid, "stock": 5, "restricted_note": "", "version": version}


class FakePublisher:
    """Answers /snapshot, /ranges and /products/batch from an in-memory dataset."""

    def __init__(self, rows: list[dict[str, Any]], high_water_mark: int) -> None:
        self.rows = {r["id"]: r for r in rows}
        self.hwm = high_water_mark

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        live = sorted(self.rows.items())
        if path == "/snapshot":
            ids = list(self.rows)
            body = {**summarize((pid, r) for pid, r in live),
                    "high_water_mark": self.hwm,
                    "id_range": [min(ids), max(ids) + 1] if ids else [0, 0]}
            return httpx.Response(200, json=body)
        if path == "/ranges":
            answers = []
            for part in request.url.params["bounds"].split(","):
                lo, hi = (int(x) for x in part.split("-"))
                inside = [(pid, r) for pid, r in live if lo <= pid < hi]
                answers.append({"lo": lo, "hi": hi, "count": len(inside),
                                "hash": summarize(inside)["hash"]})
            return httpx.Response(200, json=answers)
        if path == "/products/batch":
            ids = json.loads(request.content)["ids"]
            return httpx.Response(200, json={
                "products": [self.rows[i] for i in ids if i in self.rows], "deleted": []})
        return httpx.Response(404, text=json.dumps({"error": path}))


@pytest.fixture
def setup(tmp_path: Path) -> Any:
    engines = make_engines(f"sqlite:///{tmp_path}/c.db")
    metadata.create_all(engines.writer)
    applier = Applier(engines.writer, lambda _pid: None)

    def build(source: list[dict[str, Any]], replica: list[dict[str, Any]],
              processed_upto: int) -> Verifier:
        with engines.writer.begin() as conn:
            applier.write_rows(conn, [{**r, "deleted": False} for r in replica])
            for sequence in range(1, processed_upto + 1):  # every event up to it
                conn.exec_driver_sql(
                    "INSERT INTO inbox (event_id, type, aggregate_id, version, sequence, raw) "
                    "VALUES (?, 'ProductUpserted', '1', 1, ?, '{}')",
                    (f"e{sequence}", sequence))
        fake = FakePublisher(source, high_water_mark=10)
        client = httpx.Client(transport=httpx.MockTransport(fake.handle),
                              base_url="http://publisher")
        return Verifier(engines.reader, client, interval_s=0)

    return build


def test_in_sync(setup: Any) -> None:
    rows = [row(i) for i in range(1, 50)]
    report = setup(rows, rows, processed_upto=10).verify_once(bisect=True, sample=10)
    assert report["outcome"] == "in_sync"
    assert report["sample"]["checked"] == 10 and report["sample"]["differing"] == []
    assert len(report["sample"]["ids"]) == 10


def test_behind_until_the_high_water_mark_is_processed(setup: Any) -> None:
    rows = [row(i) for i in range(1, 50)]
    report = setup(rows, rows[:-3], processed_upto=7).verify_once(bisect=True)
    assert report["outcome"] == "behind"
    assert "divergent_ids" not in report  # lag is not divergence: no bisection


def test_diverged_is_bisected_and_classified(setup: Any) -> None:
    source = [row(i) for i in range(1, 200)]
    replica = [r for r in source if r["id"] not in (17, 150)]  # never arrived
    replica = [row(40, version=1) if r["id"] == 40 else r for r in replica]
    source = [row(40, version=2) if r["id"] == 40 else r for r in source]  # replica behind
    replica = [row(90, name="wrong") if r["id"] == 90 else r for r in replica]  # conflict
    replica.append(row(250))  # deleted at the source
    report = setup(source, replica, processed_upto=10).verify_once(bisect=True, sample=300)
    assert report["outcome"] == "diverged"
    assert report["divergent_ids"] == [17, 40, 90, 150, 250]
    assert report["kinds"] == {"missing": [17, 150], "behind": [40], "conflict": [90],
                               "extra": [250]}
    assert report["comparisons"] > 0
    assert set(report["sample"]["differing"]) == {17, 40, 90, 150, 250}


def test_at_the_mark_with_earlier_events_still_arriving_is_behind(
        setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A partitioned log: the high-water mark's event (10) was processed, 4 and 6 (on other
    # partitions) not yet. Behind while their number changes; once it has stayed the same
    # for IN_FLIGHT_QUIET_S they are a real gap, and the comparison judges.
    source = [row(i) for i in range(1, 50)]
    replica = [row(4, name="old") if r["id"] == 4 else r for r in source]
    verifier = setup(source, replica, processed_upto=10)
    with verifier.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM inbox WHERE sequence IN (4, 6)")
    now = [100.0]
    monkeypatch.setattr(verifier_module.time, "monotonic", lambda: now[0])
    assert verifier.verify_once(bisect=True)["outcome"] == "behind"
    now[0] += verifier_module.IN_FLIGHT_QUIET_S - 0.1
    with verifier.engine.begin() as conn:  # 6 arrives: still filling in
        conn.exec_driver_sql(
            "INSERT INTO inbox (event_id, type, aggregate_id, version, sequence, raw) "
            "VALUES ('e6', 'ProductUpserted', '1', 1, 6, '{}')")
    assert verifier.verify_once(bisect=True)["outcome"] == "behind"
    now[0] += verifier_module.IN_FLIGHT_QUIET_S
    report = verifier.verify_once(bisect=True)
    assert report["outcome"] == "diverged" and report["divergent_ids"] == [4]


def test_unreachable_publisher_counts_a_failure(tmp_path: Path) -> None:
    engines = make_engines(f"sqlite:///{tmp_path}/c.db")
    metadata.create_all(engines.writer)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse), base_url="http://p")
    verifier = Verifier(engines.reader, client, interval_s=0)
    assert verifier.verify_once()["outcome"].startswith("unreachable")
    assert verifier.stats.failures == 1 and verifier.stats.runs == 1


def test_a_replica_past_the_snapshot_is_behind_not_diverged(setup: Any) -> None:
    # The snapshot says high-water mark 10; the replica already processed up to 12, so its
    # rows are newer than the snapshot's: the two cannot be compared, nothing diverged.
    source = [row(i) for i in range(1, 50)]
    replica = [row(5, version=2, name="newer") if r["id"] == 5 else r for r in source]
    report = setup(source, replica, processed_upto=12).verify_once(bisect=True)
    assert report["outcome"] == "behind"
    assert "divergent_ids" not in report


def test_a_batch_committed_during_the_read_is_behind(setup: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Processed exactly up to the snapshot's mark when the check starts, but a batch commits
    # while the replica's summary is read: the summary matches no single sequence.
    source = [row(i) for i in range(1, 50)]
    replica = [row(5, name="in flight") if r["id"] == 5 else r for r in source]
    verifier = setup(source, replica, processed_upto=10)
    real_snapshot = verifier_module.replica_snapshot

    def snapshot_while_a_batch_commits(engine: Any) -> dict[str, Any]:
        summary = real_snapshot(engine)
        with verifier.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO inbox (event_id, type, aggregate_id, version, sequence, raw) "
                "VALUES ('f', 'ProductUpserted', '5', 2, 11, '{}')")
        return summary

    monkeypatch.setattr(verifier_module, "replica_snapshot", snapshot_while_a_batch_commits)
    report = verifier.verify_once(bisect=True)
    assert report["outcome"] == "behind"
    assert report["processed_upto"] == 10
