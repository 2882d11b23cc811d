"""Unit tests for reference_services.consumer.applier against a temporary SQLite replica."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from harness.contract import envelope as env
from harness.contract.dataset import row_hash_parts
from reference_services.consumer.applier import (
    Applier,
    IncomingMessage,
    RemoteProduct,
    ResyncUnavailable,
)
from reference_services.consumer.models import (
    dead_letters,
    deliveries,
    inbox,
    replica_products,
)

FIELDS: dict[str, Any] = {"name": "red mini 1", "category": "books", "price": 1999,
                          "stock": 10, "restricted_note": "supplier-cost-1"}

_ids = itertools.count(1)


class FakePublisher:
    """Stands in for GET /products/{id}: answers from a dict and records every call."""

    def __init__(self, answers: dict[int, RemoteProduct | None] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[int] = []

    def __call__(self, product_id: int) -> RemoteProduct | None:
        self.calls.append(product_id)
        return self.answers.get(product_id)


@pytest.fixture(autouse=True)
def crash_points_disarmed() -> Iterator[None]:
    """A crash point armed through RCH_CRASH_POINTS would SIGKILL the test process itself."""
    try:
        from reference_services.common.crashpoints import CRASH_POINTS
    except ImportError:  # pragma: no cover - crash points are optional for the applier
        yield
        return
    armed = CRASH_POINTS.armed()
    for point in armed:
        CRASH_POINTS.arm(point, 0)
    yield
    for point, hits in armed.items():
        CRASH_POINTS.arm(point, hits)


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
def applier(writer: Engine, publisher: FakePublisher) -> Applier:
    return Applier(writer, publisher)


def event(kind: str, pid: int, version: int, payload: dict[str, Any] | None = None,
          event_id: str | None = None) -> bytes:
    if payload is None:
        payload = {env.PRODUCT_UPSERTED: FIELDS, env.PRODUCT_DELETED: {},
                   env.STOCK_ADJUSTED: {"delta": 1, "stock": 0}}[kind]
    return env.Envelope(
        event_id=event_id or f"evt-{next(_ids)}", type=kind, aggregate_id=str(pid),
        version=version, sequence=next(_ids), occurred_at=1_700_000_000.0,
        schema_version=env.SCHEMA_VERSION, payload=dict(payload)).encode()


def upsert(pid: int, version: int, event_id: str | None = None, **fields: Any) -> bytes:
    return event(env.PRODUCT_UPSERTED, pid, version, {**FIELDS, **fields}, event_id)


def delete(pid: int, version: int, event_id: str | None = None) -> bytes:
    return event(env.PRODUCT_DELETED, pid, version, {}, event_id)


def stock(pid: int, version: int, delta: int, event_id: str | None = None) -> bytes:
    return event(env.STOCK_ADJUSTED, pid, version, {"delta": delta, "stock": 0}, event_id)


def msgs(*bodies: bytes, redelivered: bool = False) -> list[IncomingMessage]:
    return [IncomingMessage(body=b, redelivered=redelivered, received_at=1_700_000_001.0)
            for b in bodies]


def product(writer: Engine, pid: int) -> dict[str, Any] | None:
    with writer.connect() as conn:
        found = conn.execute(select(replica_products)
                             .where(replica_products.c.id == pid)).first()
    if found is None:
        return None
    row = dict(found._mapping)
    # The stored digest halves must always match the row they sit in.
    assert (row.pop("h1"), row.pop("h2")) == row_hash_parts(pid, row)
    return row


def table(writer: Engine, which: Any) -> list[dict[str, Any]]:
    with writer.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(which))]


def test_upsert_is_applied_and_recorded(applier: Applier, writer: Engine) -> None:
    result = applier.apply_batch(msgs(upsert(1, 1, event_id="a")))
    assert result.outcomes == ["applied"]
    assert product(writer, 1) == {"id": 1, **FIELDS, "version": 1, "deleted": False}
    [delivery] = table(writer, deliveries)
    assert delivery["event_id"] == "a"
    assert delivery["outcome"] == "applied"
    assert delivery["aggregate_id"] == "1"
    assert delivery["version"] == 1
    assert delivery["redelivered"] is False
    assert [r["event_id"] for r in table(writer, inbox)] == ["a"]


def test_newer_upsert_replaces_fields(applier: Applier, writer: Engine) -> None:
    applier.apply_batch(msgs(upsert(1, 1)))
    result = applier.apply_batch(msgs(upsert(1, 2, name="renamed", price=5)))
    assert result.outcomes == ["applied"]
    row = product(writer, 1)
    assert row is not None
    assert (row["name"], row["price"], row["version"]) == ("renamed", 5, 2)


def test_same_event_twice_in_one_batch_is_deduplicated(applier: Applier,
                                                       writer: Engine) -> None:
    adjust = stock(1, 2, delta=5, event_id="delta")
    result = applier.apply_batch(msgs(upsert(1, 1), adjust, adjust))
    assert result.outcomes == ["applied", "applied", "deduplicated"]
    assert result.count("deduplicated") == 1
    row = product(writer, 1)
    assert row is not None
    assert row["stock"] == FIELDS["stock"] + 5
    assert len(table(writer, inbox)) == 2
    assert [d["outcome"] for d in table(writer, deliveries)] == result.outcomes


def test_same_event_across_batches_is_deduplicated(applier: Applier, writer: Engine) -> None:
    adjust = stock(1, 2, delta=-4, event_id="delta")
    applier.apply_batch(msgs(upsert(1, 1), adjust))
    result = applier.apply_batch(msgs(adjust, redelivered=True))
    assert result.outcomes == ["deduplicated"]
    row = product(writer, 1)
    assert row is not None
    assert (row["stock"], row["version"]) == (FIELDS["stock"] - 4, 2)
    last = table(writer, deliveries)[-1]
    assert (last["event_id"], last["outcome"], last["redelivered"]) == \
        ("delta", "deduplicated", True)


def test_duplicate_upsert_after_newer_version_is_deduplicated_not_stale(
        applier: Applier, writer: Engine) -> None:
    first = upsert(1, 1, event_id="v1")
    applier.apply_batch(msgs(first, upsert(1, 2, name="second")))
    assert applier.apply_batch(msgs(first)).outcomes == ["deduplicated"]
    row = product(writer, 1)
    assert row is not None
    assert row["name"] == "second"


def test_older_version_after_newer_is_stale(applier: Applier, writer: Engine) -> None:
    applier.apply_batch(msgs(upsert(1, 3, name="newest")))
    before = product(writer, 1)
    result = applier.apply_batch(msgs(upsert(1, 2, name="older"), upsert(1, 3, name="same")))
    assert result.outcomes == ["stale", "stale"]
    assert product(writer, 1) == before
    assert before is not None
    assert before["name"] == "newest"


def test_older_version_in_the_same_batch_is_stale(applier: Applier, writer: Engine) -> None:
    result = applier.apply_batch(msgs(upsert(1, 5, name="five"), upsert(1, 4, name="four")))
    assert result.outcomes == ["applied", "stale"]
    row = product(writer, 1)
    assert row is not None
    assert (row["name"], row["version"]) == ("five", 5)


def test_delete_then_older_upsert_stays_deleted(applier: Applier, writer: Engine) -> None:
    applier.apply_batch(msgs(upsert(1, 1)))
    assert applier.apply_batch(msgs(delete(1, 3))).outcomes == ["applied"]
    result = applier.apply_batch(msgs(upsert(1, 2, name="late")))
    assert result.outcomes == ["stale"]
    row = product(writer, 1)
    assert row is not None
    assert row["deleted"] is True
    assert row["version"] == 3
    assert row["name"] == FIELDS["name"]  # tombstone keeps the last known fields


def test_delete_of_unknown_product_leaves_a_tombstone(applier: Applier,
                                                      writer: Engine) -> None:
    result = applier.apply_batch(msgs(delete(9, 4), upsert(9, 3)))
    assert result.outcomes == ["applied", "stale"]
    row = product(writer, 9)
    assert row is not None
    assert (row["deleted"], row["version"], row["name"], row["price"]) == (True, 4, "", 0)


def test_stock_adjusted_applies_exactly_once_on_top_of_previous_version(
        applier: Applier, writer: Engine, publisher: FakePublisher) -> None:
    adjust = stock(1, 2, delta=7, event_id="d")
    result = applier.apply_batch(msgs(upsert(1, 1), adjust))
    assert result.outcomes == ["applied", "applied"]
    applier.apply_batch(msgs(adjust, adjust, redelivered=True))
    row = product(writer, 1)
    assert row is not None
    assert (row["stock"], row["version"]) == (FIELDS["stock"] + 7, 2)
    applied = [d for d in table(writer, deliveries)
               if d["event_id"] == "d" and d["outcome"] == "applied"]
    assert len(applied) == 1
    assert publisher.calls == []


def test_stock_adjusted_chain_in_one_batch(applier: Applier, writer: Engine) -> None:
    result = applier.apply_batch(msgs(upsert(1, 1), stock(1, 2, 3), stock(1, 3, -1),
                                      stock(1, 4, 10)))
    assert result.outcomes == ["applied"] * 4
    row = product(writer, 1)
    assert row is not None
    assert (row["stock"], row["version"]) == (FIELDS["stock"] + 12, 4)


def test_delta_with_missing_previous_version_resyncs_once(writer: Engine) -> None:
    remote = {**FIELDS, "name": "from publisher", "stock": 77}
    publisher = FakePublisher({1: RemoteProduct(version=3, deleted=False, fields=remote)})
    applier = Applier(writer, publisher)
    applier.apply_batch(msgs(upsert(1, 1)))
    result = applier.apply_batch(msgs(stock(1, 3, delta=5)))  # version 2 never arrived
    assert result.outcomes == ["resynced"]
    assert publisher.calls == [1]
    assert product(writer, 1) == {"id": 1, **remote, "version": 3, "deleted": False}
    assert [d["outcome"] for d in table(writer, deliveries)] == ["applied", "resynced"]


def test_delta_for_unknown_product_resyncs(writer: Engine) -> None:
    publisher = FakePublisher({4: RemoteProduct(version=2, deleted=False, fields=FIELDS)})
    result = Applier(writer, publisher).apply_batch(msgs(stock(4, 2, delta=1)))
    assert result.outcomes == ["resynced"]
    assert publisher.calls == [4]
    assert product(writer, 4) == {"id": 4, **FIELDS, "version": 2, "deleted": False}


def test_resync_to_a_tombstone_marks_the_row_deleted(writer: Engine) -> None:
    publisher = FakePublisher({1: RemoteProduct(version=5, deleted=True)})
    applier = Applier(writer, publisher)
    applier.apply_batch(msgs(upsert(1, 1)))
    result = applier.apply_batch(msgs(stock(1, 3, delta=1)))
    assert result.outcomes == ["resynced"]
    row = product(writer, 1)
    assert row is not None
    assert (row["deleted"], row["version"], row["name"]) == (True, 5, FIELDS["name"])


def test_resync_supersedes_later_events_in_the_same_batch(writer: Engine) -> None:
    publisher = FakePublisher({1: RemoteProduct(version=4, deleted=False,
                                                fields={**FIELDS, "stock": 40})})
    applier = Applier(writer, publisher)
    result = applier.apply_batch(msgs(upsert(1, 1), stock(1, 3, 2), stock(1, 4, 2)))
    assert result.outcomes == ["applied", "resynced", "stale"]
    assert publisher.calls == [1]
    row = product(writer, 1)
    assert row is not None
    assert (row["stock"], row["version"]) == (40, 4)


@pytest.mark.parametrize(
    "answer",
    [RemoteProduct(version=2, deleted=False, fields=FIELDS), None],
    ids=["older-version", "not-found"],
)
def test_resync_without_the_wanted_version_rolls_back_the_batch(
        writer: Engine, answer: RemoteProduct | None) -> None:
    publisher = FakePublisher({1: answer})
    applier = Applier(writer, publisher)
    applier.apply_batch(msgs(upsert(1, 1, event_id="first")))
    before = {t.name: table(writer, t) for t in (replica_products, inbox, deliveries,
                                                 dead_letters)}
    batch = msgs(upsert(2, 1, event_id="other"), b"{poison", stock(1, 3, delta=5))
    with pytest.raises(ResyncUnavailable, match="version >= 3 of 1"):
        applier.apply_batch(batch)
    assert publisher.calls == [1]
    after = {t.name: table(writer, t) for t in (replica_products, inbox, deliveries,
                                                dead_letters)}
    assert after == before
    assert product(writer, 2) is None


def test_batch_can_be_retried_after_resync_becomes_available(writer: Engine) -> None:
    publisher = FakePublisher({1: RemoteProduct(version=2, deleted=False, fields=FIELDS)})
    applier = Applier(writer, publisher)
    applier.apply_batch(msgs(upsert(1, 1)))
    batch = msgs(stock(1, 3, delta=5, event_id="gap"))
    with pytest.raises(ResyncUnavailable):
        applier.apply_batch(batch)
    publisher.answers[1] = RemoteProduct(version=3, deleted=False,
                                         fields={**FIELDS, "stock": 15})
    assert applier.apply_batch(batch).outcomes == ["resynced"]
    assert [r["event_id"] for r in table(writer, inbox)][-1] == "gap"


def test_poison_message_is_dead_lettered_and_rest_of_batch_applies(
        applier: Applier, writer: Engine) -> None:
    poison = b'{"not": "an envelope"'
    result = applier.apply_batch(msgs(upsert(1, 1), poison, upsert(2, 1)))
    assert result.outcomes == ["applied", "dead_lettered", "applied"]
    assert product(writer, 1) is not None
    assert product(writer, 2) is not None
    [dead] = table(writer, dead_letters)
    assert dead["reason"].startswith("malformed JSON: ")
    assert dead["raw"] == poison
    assert dead["digest"] == hashlib.sha256(poison).hexdigest()
    assert dead["attempts"] == 1
    recorded = table(writer, deliveries)
    assert [d["outcome"] for d in recorded] == result.outcomes
    assert recorded[1]["event_id"] is None


def test_invalid_envelope_is_dead_lettered_with_its_reason(applier: Applier,
                                                           writer: Engine) -> None:
    bad = event(env.STOCK_ADJUSTED, 1, 2, {"delta": "5", "stock": 1})
    assert applier.apply_batch(msgs(bad)).outcomes == ["dead_lettered"]
    [dead] = table(writer, dead_letters)
    assert dead["reason"] == "wrong type for payload.delta: str"


def test_same_poison_bytes_again_increment_attempts_of_one_row(applier: Applier,
                                                               writer: Engine) -> None:
    poison = b"not json at all"
    applier.apply_batch(msgs(poison))
    applier.apply_batch(msgs(poison, redelivered=True))
    applier.apply_batch(msgs(poison, poison, redelivered=True))
    [dead] = table(writer, dead_letters)
    assert dead["attempts"] == 4
    assert dead["last_seen"] >= dead["first_seen"]
    other = b"[1, 2]"
    applier.apply_batch(msgs(other))
    reasons = {r["raw"]: (r["attempts"], r["reason"]) for r in table(writer, dead_letters)}
    assert reasons[other] == (1, "malformed envelope: expected an object, got list")
    assert reasons[poison][0] == 4


def test_empty_batch_is_harmless(applier: Applier, writer: Engine) -> None:
    assert applier.apply_batch([]).outcomes == []
    assert table(writer, deliveries) == []


def test_unicode_digit_aggregate_id_is_dead_lettered(applier: Applier, writer: Engine) -> None:
    bad = event(env.PRODUCT_DELETED, 1, 1).replace(b'"aggregate_id":"1"',
                                                   b'"aggregate_id":"\\u00b2"')
    result = applier.apply_batch(msgs(upsert(1, 1), bad))
    assert result.outcomes == ["applied", "dead_lettered"]


def test_version_beyond_64_bits_is_dead_lettered(applier: Applier, writer: Engine) -> None:
    result = applier.apply_batch(msgs(upsert(1, 1), upsert(2, 2**64)))
    assert result.outcomes == ["applied", "dead_lettered"]
    assert product(writer, 1) is not None
