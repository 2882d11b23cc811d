"""Unit tests for the consumer's full resync (reference_services/consumer/resync.py)
against a fake publisher (httpx.MockTransport) and a temporary SQLite replica: events
after the export's high-water mark arrive through the catch-up alone, exactly once; a
product deleted at the source stays deleted whatever older event comes later; a catch-up
page that fails fails the resync instead of ending it early."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from harness.contract import envelope as env
from reference_services.consumer.applier import Applier, IncomingMessage, RemoteProduct
from reference_services.consumer.models import deliveries, replica_products
from reference_services.consumer.resync import Resyncer, ResyncError

FIELDS: dict[str, Any] = {"name": "red mini 1", "category": "books", "price": 1999,
                          "stock": 10, "restricted_note": "supplier-cost-1"}


def event(sequence: int, kind: str, pid: int, version: int,
          payload: dict[str, Any]) -> dict[str, Any]:
    """An outbox record as GET /events lists it."""
    return {"event_id": f"evt-{sequence}", "type": kind, "aggregate_id": str(pid),
            "version": version, "sequence": sequence, "occurred_at": 1_700_000_000.0,
            "schema_version": env.SCHEMA_VERSION, "payload": payload, "sent_at": None}


class FakePublisher:
    """GET /export (rows at `mark`), GET /events (the outbox after `mark`),
    GET /products/{id} (live rows, `tombstones` answered 410 with their version) and
    POST /products/batch (the same for many ids)."""

    def __init__(self, rows: list[dict[str, Any]], mark: int, events: list[dict[str, Any]],
                 tombstones: dict[int, int] | None = None,
                 failing_pages: frozenset[int] = frozenset(), page_size: int = 1000) -> None:
        self.rows = rows
        self.mark = mark
        self.events = events
        self.tombstones = tombstones or {}
        self.failing_pages = failing_pages  # `after` values whose page answers 500
        self.page_size = page_size  # at most this many events per page, whatever `limit`
        self.pages: list[int] = []
        self.batches: list[list[int]] = []  # the ids of each POST /products/batch

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/export":
            lines = [{"high_water_mark": self.mark, "count": len(self.rows)}, *self.rows]
            return httpx.Response(200, text="".join(json.dumps(x) + "\n" for x in lines))
        if path == "/events":
            after = int(request.url.params["after"])
            limit = int(request.url.params["limit"])
            self.pages.append(after)
            if after in self.failing_pages:
                return httpx.Response(500, json={"error": "database is locked"})
            later = [e for e in self.events if e["sequence"] > after]
            return httpx.Response(200, json=later[:min(limit, self.page_size)])
        if path == "/products/batch":
            ids = json.loads(request.content)["ids"]
            self.batches.append(ids)
            by_id = {r["id"]: r for r in self.rows}
            return httpx.Response(200, json={
                "products": [by_id[i] for i in ids if i in by_id],
                "deleted": [{"id": i, "version": self.tombstones[i]} for i in ids
                            if i in self.tombstones]})
        pid = int(path.rsplit("/", 1)[1])
        if pid in self.tombstones:
            return httpx.Response(410, json={"error": "product deleted", "deleted": True,
                                             "version": self.tombstones[pid]})
        live = [r for r in self.rows if r["id"] == pid]
        return httpx.Response(200, json=live[0]) if live else httpx.Response(404, json={})


def resyncer_for(writer: Engine, publisher: FakePublisher, variant: str = "none") -> Resyncer:
    client = httpx.Client(base_url="http://publisher.test",
                          transport=httpx.MockTransport(publisher.handle))
    resyncer: Resyncer | None = None

    def fetch(pid: int) -> RemoteProduct | None:
        assert resyncer is not None
        return resyncer.fetch(pid)

    resyncer = Resyncer(Applier(writer, fetch, variant), client)
    return resyncer


def deliver(resyncer: Resyncer, *events: dict[str, Any]) -> list[str]:
    """What the queue would hand the worker: a batch of these events."""
    batch = [IncomingMessage(env.from_event(e).encode(), False, 1_700_000_001.0)
             for e in events]
    return resyncer.applier.apply_batch(batch).outcomes


def row(writer: Engine, pid: int) -> dict[str, Any]:
    with writer.connect() as conn:
        found = conn.execute(select(replica_products)
                             .where(replica_products.c.id == pid)).one()
    return {k: v for k, v in found._mapping.items() if k not in ("h1", "h2")}


def outcomes_by_event(writer: Engine) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    with writer.connect() as conn:
        for d in conn.execute(select(deliveries)):
            seen.setdefault(d.event_id, []).append(d.outcome)
    return seen


def test_events_after_the_mark_come_through_the_catch_up_exactly_once(writer: Engine) -> None:
    after_mark = [event(11, env.STOCK_ADJUSTED, 1, 3, {"delta": 5, "stock": 15}),
                  event(12, env.PRODUCT_UPSERTED, 2, 1, {**FIELDS, "name": "new"}),
                  event(13, env.STOCK_ADJUSTED, 1, 4, {"delta": -2, "stock": 13})]
    publisher = FakePublisher([{"id": 1, **FIELDS, "version": 2}], 10, after_mark)
    resyncer = resyncer_for(writer, publisher)
    report = resyncer.full()
    assert (report.high_water_mark, report.caught_up_events, report.caught_up_to) == (10, 3, 13)
    assert row(writer, 1)["stock"] == 13 and row(writer, 1)["version"] == 4
    assert row(writer, 2)["name"] == "new"
    # The queue brings one of them late: it is recognised, not applied again.
    assert deliver(resyncer, after_mark[2]) == ["deduplicated"]
    assert row(writer, 1)["stock"] == 13
    assert outcomes_by_event(writer) == {"evt-11": ["applied"], "evt-12": ["applied"],
                                         "evt-13": ["applied", "deduplicated"]}


def test_queue_events_between_catch_up_pages_are_applied_once(writer: Engine) -> None:
    events = [event(10 + i, env.STOCK_ADJUSTED, 1, 2 + i, {"delta": i, "stock": 0})
              for i in range(1, 5)]
    publisher = FakePublisher([{"id": 1, **FIELDS, "version": 2}], 10, events, page_size=2)
    resyncer = resyncer_for(writer, publisher)
    catch_up_page = resyncer.applier.apply_batch

    def page_then_queue(messages: Any) -> Any:
        # The apply lock is free between pages: the worker applies what the queue brought
        # (the two events the next page will list again).
        resyncer.applier.apply_batch = catch_up_page  # type: ignore[method-assign]
        result = catch_up_page(messages)
        assert deliver(resyncer, *events[2:]) == ["applied", "applied"]
        return result

    resyncer.applier.apply_batch = page_then_queue  # type: ignore[method-assign]
    report = resyncer.full()
    assert (report.caught_up_events, report.caught_up_to) == (4, 14)
    assert publisher.pages == [10, 12, 14]
    assert row(writer, 1)["stock"] == 10 + 1 + 2 + 3 + 4 and row(writer, 1)["version"] == 6
    assert outcomes_by_event(writer) == {
        "evt-11": ["applied"], "evt-12": ["applied"],
        "evt-13": ["applied", "deduplicated"], "evt-14": ["applied", "deduplicated"]}


def test_product_deleted_at_the_source_is_not_brought_back_by_an_older_event(
        writer: Engine) -> None:
    resyncer = resyncer_for(writer, FakePublisher([], 0, []))
    deliver(resyncer, event(1, env.PRODUCT_UPSERTED, 7, 1, FIELDS))
    # At the source: v2 (an update) and v3 (the delete) happened; the replica saw neither.
    publisher = FakePublisher([], 3, [], tombstones={7: 3})
    resyncer = resyncer_for(writer, publisher)
    report = resyncer.full()
    assert report.removed == 1
    assert publisher.batches == [[7]]  # its delete's version, asked in one batch
    assert row(writer, 7)["deleted"] is True and row(writer, 7)["version"] == 3
    # The update, still queued (or waiting on the apply lock), arrives after the resync.
    assert deliver(resyncer, event(2, env.PRODUCT_UPSERTED, 7, 2, FIELDS)) == ["stale"]
    assert row(writer, 7)["deleted"] is True


def test_a_failed_catch_up_page_fails_the_resync_saying_how_far_it_got(
        writer: Engine) -> None:
    events = [event(11, env.PRODUCT_UPSERTED, 1, 3, FIELDS),
              event(12, env.PRODUCT_UPSERTED, 1, 4, FIELDS)]
    publisher = FakePublisher([{"id": 1, **FIELDS, "version": 2}], 10, events,
                              failing_pages=frozenset({12}))
    resyncer = resyncer_for(writer, publisher)
    with pytest.raises(ResyncError) as info:
        resyncer.full()
    assert "publisher answered 500" in str(info.value)
    assert "export at 10 and events up to 12" in str(info.value)
    assert publisher.pages == [10, 12]
    assert resyncer.history == []  # not reported as done


def test_variant_skip_catch_up_leaves_the_events_after_the_mark_out(writer: Engine) -> None:
    after_mark = [event(11, env.STOCK_ADJUSTED, 1, 3, {"delta": 5, "stock": 15})]
    publisher = FakePublisher([{"id": 1, **FIELDS, "version": 2}], 10, after_mark)
    report = resyncer_for(writer, publisher, "skip_catch_up").full()
    assert (report.caught_up_events, report.caught_up_to) == (0, 10)
    assert publisher.pages == []
    assert row(writer, 1)["version"] == 2 and row(writer, 1)["stock"] == 10
