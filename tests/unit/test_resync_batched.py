"""The batched read paths of verification and resync, against the real publisher app (its
store on a temporary SQLite file, reached through httpx's WSGI transport) and a real
consumer replica: POST /products/batch, GET /ranges answered in one statement per call,
the streamed GET /export read in batches by a full resync, and a partial resync fetching
its ids a batch per request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, select
from sqlalchemy.dialects import sqlite

from harness.contract.dataset import summarize
from reference_services.common.db import make_engines
from reference_services.common.rowhash_sql import range_summary, ranges_statement
from reference_services.consumer import resync as resync_module
from reference_services.consumer.applier import Applier
from reference_services.consumer.models import replica_products
from reference_services.consumer.queries import replica_snapshot
from reference_services.consumer.resync import Resyncer, ResyncError, ndjson_batches
from reference_services.consumer.verifier import Verifier
from reference_services.publisher.app import create_app
from reference_services.publisher.models import products
from reference_services.publisher.relay import Relay
from reference_services.publisher.store import MAX_BATCH_IDS, ProductStore

FIELDS: dict[str, Any] = {"name": "red mini", "category": "books", "price": 1999,
                          "stock": 10, "restricted_note": "supplier-cost-1"}


class Publisher:
    """A real publisher app on SQLite, and a client that counts the requests it makes."""

    def __init__(self, store: ProductStore) -> None:
        self.store = store
        # Never started: a write only wakes it, and nothing here needs a broker.
        app = create_app(store, Relay(store, "amqp://guest:guest@127.0.0.1:1/%2F"), "none")
        self.requests: list[str] = []
        wsgi = httpx.WSGITransport(app=app)

        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(f"{request.method} {request.url.path}")
            return wsgi.handle_request(request)

        self.client = httpx.Client(base_url="http://publisher.test",
                                   transport=httpx.MockTransport(handle))

    def seed(self, n: int) -> None:
        for i in range(1, n + 1):
            self.store.create({**FIELDS, "name": f"product {i}", "price": 100 + i})


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[Publisher]:
    store = ProductStore(make_engines(f"sqlite:///{tmp_path / 'publisher.db'}"))
    yield Publisher(store)
    store.engines.writer.dispose()
    store.engines.reader.dispose()


def replica_row(writer: Engine, pid: int) -> Any:
    with writer.connect() as conn:
        return conn.execute(select(replica_products)
                            .where(replica_products.c.id == pid)).one_or_none()


def test_batch_answers_live_deleted_and_unknown_ids_as_get_would(publisher: Publisher) -> None:
    publisher.seed(3)
    publisher.store.update(2, {"price": 7})
    publisher.store.delete(3)  # version 2
    response = publisher.client.post("/products/batch", json={"ids": [3, 1, 2, 99, 1]})
    assert response.status_code == 200
    body = response.json()
    assert [(p["id"], p["version"]) for p in body["products"]] == [(1, 1), (2, 2)]
    assert body["products"][1] == publisher.client.get("/products/2").json()
    assert body["deleted"] == [{"id": 3, "version": 2}]


@pytest.mark.parametrize("body", [{}, {"ids": "1,2"}, {"ids": [1, "2"]}, {"ids": [True]},
                                  {"ids": list(range(MAX_BATCH_IDS + 1))}])
def test_batch_rejects_anything_but_a_bounded_list_of_ids(publisher: Publisher,
                                                          body: dict[str, Any]) -> None:
    response = publisher.client.post("/products/batch", json=body)
    assert response.status_code == 400
    assert "at most" in response.json()["error"]


def test_ranges_in_one_statement_match_a_summary_per_range(publisher: Publisher) -> None:
    publisher.seed(40)
    for pid in (5, 6, 30):
        publisher.store.delete(pid)
    bounds = [(0, 1), (1, 8), (8, 8), (5, 7), (8, 33), (33, 100), (200, 300)]
    spec = ",".join(f"{lo}-{hi}" for lo, hi in bounds)
    answers = publisher.client.get("/ranges", params={"bounds": spec}).json()
    live = [(p["id"], p) for p in publisher.store.rows_in_range(0, 1000)]
    for (lo, hi), answer in zip(bounds, answers, strict=True):
        inside = [(pid, row) for pid, row in live if lo <= pid < hi]
        assert answer == {"lo": lo, "hi": hi, "count": len(inside),
                          "hash": summarize(inside)["hash"]}
    with publisher.store.engines.reader.connect() as conn:
        assert answers == [range_summary(conn, products, lo, hi) for lo, hi in bounds]


@pytest.mark.parametrize("table", [products, replica_products], ids=lambda t: t.name)
def test_ranges_walk_the_primary_key_not_the_table(publisher: Publisher, writer: Engine,
                                                   table: Table) -> None:
    """An index range search per asked range, on both services' tables, and no sort: a
    join with `deleted` in its condition made SQLite build an automatic index on it and
    scan every live row once per range; a join grouped by range sorted every row."""
    publisher.seed(5)
    engine = publisher.store.engines.reader if table is products else writer
    statement = ranges_statement(table, [(1, 3), (3, 6)])
    sql = str(statement.compile(dialect=sqlite.dialect(),
                                compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()
    details = " | ".join(str(step[3]) for step in plan)
    assert (f"SEARCH {table.name} USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"
            in details)
    assert "AUTOMATIC" not in details and f"SCAN {table.name}" not in details
    assert "TEMP B-TREE FOR GROUP BY" not in details  # the ORDER BY sorts one row a range


@given(st.lists(st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2),
                max_size=12),
       st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=5))
def test_ndjson_batches_reassemble_lines_split_anywhere(values: list[dict[str, int]],
                                                        piece: int, size: int) -> None:
    data = "".join(json.dumps(v) + "\n" for v in values).encode()
    chunks = [data[i:i + piece] for i in range(0, len(data), piece)]
    batches = list(ndjson_batches(chunks, size))
    assert [v for batch in batches for v in batch] == values
    assert all(len(batch) == size for batch in batches[:-1])


def test_export_lines_are_the_products_as_get_answers_them(publisher: Publisher) -> None:
    publisher.seed(2)
    publisher.store.update(2, {"name": 'quote " back\\slash é 💡', "restricted_note": "\n"})
    publisher.store.delete(1)
    header, *lines = publisher.client.get("/export").text.splitlines()
    assert json.loads(header)["count"] == 1
    assert [json.loads(line) for line in lines] == [publisher.client.get("/products/2").json()]


def full_resyncer(writer: Engine, publisher: Publisher) -> Resyncer:
    return Resyncer(Applier(writer, lambda _pid: None), publisher.client)


def test_full_resync_streams_the_export_in_batches_and_converges(
        writer: Engine, publisher: Publisher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resync_module, "EXPORT_BATCH", 3)
    monkeypatch.setattr(resync_module, "_EXPORT_READ", 17)  # lines split across reads
    publisher.seed(10)
    publisher.store.update(4, {"name": "renamed"})
    publisher.store.delete(9)  # version 2
    resyncer = full_resyncer(writer, publisher)
    # The replica holds: 4 at its old version, 9 still live, 50 the publisher never had.
    with writer.begin() as conn:
        resyncer.applier.write_rows(conn, [
            {"id": pid, **FIELDS, "name": f"product {pid}", "price": 100 + pid,
             "version": 1, "deleted": False} for pid in (1, 4, 9)]
            + [{"id": 50, **FIELDS, "version": 3, "deleted": False}])
    report = resyncer.full()
    assert (report.fetched, report.removed) == (9, 2)
    assert report.changed == 9 - 1  # row 1 already equal: not rewritten
    assert replica_row(writer, 9).deleted and replica_row(writer, 9).version == 2
    assert replica_row(writer, 50).deleted and replica_row(writer, 50).version == 3
    assert replica_row(writer, 4).name == "renamed"
    source = publisher.store.snapshot()
    assert {k: replica_snapshot(writer)[k] for k in ("count", "categories", "hash")} == {
        k: source[k] for k in ("count", "categories", "hash")}
    # One export, one batch fetch for the two tombstones, one empty catch-up page.
    assert publisher.requests == ["GET /export", "POST /products/batch", "GET /events"]


def test_an_export_cut_short_fails_the_resync_and_changes_nothing(
        writer: Engine, publisher: Publisher) -> None:
    publisher.seed(4)
    resyncer = full_resyncer(writer, publisher)
    with writer.begin() as conn:
        resyncer.applier.write_rows(conn, [{"id": 3, **FIELDS, "version": 1,
                                            "deleted": False}])
    lines = publisher.client.get("/export").text.splitlines(keepends=True)
    cut = httpx.Client(base_url="http://publisher.test", transport=httpx.MockTransport(
        lambda _request: httpx.Response(200, content="".join(lines[:3]).encode())))
    resyncer.client = cut
    with pytest.raises(ResyncError, match="announced 4 rows and sent 2"):
        resyncer.full()
    assert replica_row(writer, 3).name == FIELDS["name"] and not replica_row(writer, 3).deleted
    assert replica_row(writer, 1) is None


def test_partial_resync_fetches_a_batch_per_request(
        writer: Engine, publisher: Publisher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resync_module, "FETCH_BATCH", 2)
    publisher.seed(5)
    publisher.store.delete(5)  # version 2
    resyncer = full_resyncer(writer, publisher)
    with writer.begin() as conn:
        resyncer.applier.write_rows(conn, [
            {"id": pid, **FIELDS, "price": 1, "version": 1, "deleted": False}
            for pid in (1, 2, 5, 60)])
    report = resyncer.partial([1, 2, 3, 5, 60, 2])
    assert publisher.requests == ["POST /products/batch"] * 3  # 5 distinct ids, 2 a request
    assert (report.fetched, report.changed, report.removed) == (5, 4, 1)
    assert sorted(report.changed_ids) == [1, 2, 3, 5, 60]
    for pid in (1, 2, 3):
        assert replica_row(writer, pid).price == 100 + pid
    assert replica_row(writer, 5).deleted and replica_row(writer, 5).version == 2
    assert replica_row(writer, 60).deleted


def test_verification_against_the_real_publisher_asks_a_level_and_a_batch_per_call(
        writer: Engine, publisher: Publisher) -> None:
    """Bisection asks GET /ranges once per level and classification and the spot check one
    POST /products/batch each, whatever the number of divergent ids."""
    publisher.seed(300)
    resyncer = full_resyncer(writer, publisher)
    resyncer.full()
    for pid in (3, 70, 71, 250):  # never arrived at the replica
        publisher.store.update(pid, {"name": f"changed {pid}"})
    publisher.store.delete(120)
    with writer.begin() as conn:  # as if every event up to the mark had been processed
        mark = publisher.store.snapshot()["high_water_mark"]
        conn.exec_driver_sql(
            "INSERT INTO inbox (event_id, type, aggregate_id, version, sequence, raw) "
            "VALUES (?, 'ProductUpserted', '1', 1, ?, '{}')",
            [(f"e{sequence}", sequence) for sequence in range(1, mark + 1)])
    publisher.requests.clear()
    verifier = Verifier(writer, publisher.client, interval_s=0)
    report = verifier.verify_once(bisect=True, sample=40)
    assert report["outcome"] == "diverged"
    assert report["divergent_ids"] == [3, 70, 71, 120, 250]
    assert report["kinds"] == {"missing": [], "behind": [3, 70, 71, 250], "extra": [120],
                               "conflict": []}
    levels = len([r for r in publisher.requests if r == "GET /ranges"])
    assert levels == report["round_trips"] <= 4  # 300 ids, 16-way: at most 4 levels
    assert publisher.requests.count("POST /products/batch") == 2  # classify + spot check
