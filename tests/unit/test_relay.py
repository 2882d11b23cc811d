"""The relay's publish path with a fake broker client: rows are marked sent only after the
broker has them, by the marker's thread, and never published twice meanwhile."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pika.spec
import pytest

from reference_services.common.db import make_engines
from reference_services.publisher.confirming_publisher import (
    ConfirmingPublisher,
    OutgoingMessage,
    PublishedBatch,
    PublishError,
)
from reference_services.publisher.relay import Relay
from reference_services.publisher.store import ProductStore


class FakePublisher:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.batches: list[list[str]] = []

    @property
    def connected(self) -> bool:
        return True

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        if self.fail:
            raise PublishError("nacked")
        self.batches.append([m.message_id for m in messages])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProductStore]:
    store = ProductStore(make_engines(f"sqlite:///{tmp_path}/p.db"))
    for name in ("a", "b", "c"):
        store.create({"name": name, "category": "x", "price": 1, "stock": 1})
    yield store
    store.engines.writer.dispose()
    store.engines.reader.dispose()


def _relay(store: ProductStore, publisher: FakePublisher | FakeConfirming) -> Relay:
    relay = Relay(store, "amqp://guest:guest@127.0.0.1:1/%2F")
    relay._new_publisher = lambda: publisher
    return relay


def test_confirmed_rows_are_not_published_again_before_their_mark(store: ProductStore) -> None:
    publisher = FakePublisher()
    relay = _relay(store, publisher)  # the marker's thread is not started: marks wait
    assert relay.relay_once() == 3
    assert relay.relay_once() == 0
    assert len(publisher.batches) == 1
    assert store.outbox_counts()["pending"] == 3
    store.create({"name": "d", "category": "x", "price": 1, "stock": 1})
    assert relay.relay_once() == 1  # only the new row
    relay._marker.start()
    relay._marker.stop()
    assert store.outbox_counts()["pending"] == 0
    assert relay._marker.pending() == frozenset()


def test_rows_the_broker_refused_stay_unsent(store: ProductStore) -> None:
    relay = _relay(store, FakePublisher(fail=True))
    relay._marker.start()
    with pytest.raises(PublishError):
        relay.relay_once()
    relay._marker.stop()
    assert store.outbox_counts()["pending"] == 3
    assert relay._marker.pending() == frozenset()


class FakeConfirming(ConfirmingPublisher):
    """Batches settle only when the test says so, as the broker's confirms would."""

    def __init__(self) -> None:
        super().__init__("amqp://guest:guest@127.0.0.1:1/%2F")
        self.sent: list[PublishedBatch] = []
        self.refuse = False

    @property
    def connected(self) -> bool:
        return True

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    def publish_async(self, messages: Sequence[OutgoingMessage]) -> PublishedBatch:
        if self.refuse:  # the connection failed between the relay's check and its send
            raise PublishError("not connected")
        self.sent.append(PublishedBatch(len(messages)))
        return self.sent[-1]


def _confirm(batch: PublishedBatch, error: str | None = None) -> None:
    batch.unconfirmed = 0
    batch.error = error
    batch.settle()


def test_the_next_batch_goes_out_before_the_last_is_confirmed(store: ProductStore) -> None:
    publisher = FakeConfirming()
    relay = _relay(store, publisher)
    assert relay.relay_once() == 3
    store.create({"name": "d", "category": "x", "price": 1, "stock": 1})
    assert relay.relay_once() == 1  # row 4, while rows 1-3 await their confirm
    assert relay.relay_once() == 0
    first, second = publisher.sent
    _confirm(first)
    assert relay.relay_once() == 0
    _confirm(second, error="connection closed")
    with pytest.raises(PublishError, match="connection closed"):
        relay.relay_once()
    relay._abandon_in_flight()
    assert relay.relay_once() == 1  # row 4 again: it was never confirmed
    assert publisher.sent[-1].size == 1
    relay._marker.start()
    relay._marker.stop()
    # Rows 1-3 are marked; row 4's second sending is not confirmed yet.
    assert store.outbox_counts()["pending"] == 1


def test_a_batch_refused_at_once_is_read_again(store: ProductStore) -> None:
    publisher = FakeConfirming()
    relay = _relay(store, publisher)
    publisher.refuse = True
    with pytest.raises(PublishError):
        relay.relay_once()
    relay._abandon_in_flight()
    publisher.refuse = False
    assert relay.relay_once() == 3


class _Frame:
    def __init__(self, method: object) -> None:
        self.method = method


def test_confirms_settle_each_batch_by_its_delivery_tags() -> None:
    publisher = ConfirmingPublisher("amqp://guest:guest@127.0.0.1:1/%2F")
    settled: list[int] = []
    publisher._on_settled = lambda: settled.append(1)
    first, second = PublishedBatch(3), PublishedBatch(2)
    publisher._outstanding = {1: first, 2: first, 3: first, 4: second, 5: second}
    publisher._on_confirm(_Frame(pika.spec.Basic.Ack(delivery_tag=2, multiple=True)))
    assert not first.settled()
    publisher._on_confirm(_Frame(pika.spec.Basic.Ack(delivery_tag=3, multiple=False)))
    first.wait(0)
    publisher._on_confirm(_Frame(pika.spec.Basic.Nack(delivery_tag=5, multiple=False)))
    publisher._on_confirm(_Frame(pika.spec.Basic.Ack(delivery_tag=4, multiple=False)))
    with pytest.raises(PublishError, match="nacked 1 of 2"):
        second.wait(0)
    assert settled == [1, 1]
    assert publisher._outstanding == {}


def test_a_lost_connection_settles_every_unconfirmed_batch_as_failed() -> None:
    publisher = ConfirmingPublisher("amqp://guest:guest@127.0.0.1:1/%2F")
    batch = PublishedBatch(2)
    publisher._outstanding = {1: batch, 2: batch}
    publisher._fail("connection closed: reset")
    with pytest.raises(PublishError, match="reset"):
        batch.wait(0)
