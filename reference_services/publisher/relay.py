"""The outbox relay: publishes unsent outbox rows in batches and marks them sent only after
the broker confirmed them. A crash anywhere leaves unconfirmed rows unsent, so they are
published again after restart (at-least-once; consumers dedupe by event_id).

It reads the rows *not marked sent*, whatever their sequence numbers: on a database with
concurrent writers (PostgreSQL) a row with a lower number can commit after a higher one
was published, and a later poll still finds it. Reading "after the last number sent"
would skip it for good (variant relay_by_sequence_only).

One loop for every broker: the broker URL's scheme picks the client (RabbitMQ publisher
confirms, or Kafka delivery reports from an idempotent producer) and the routing key
(`products.<id>`, or the aggregate id as the Kafka record key)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import ColumnElement, select

from reference_services.common import kafka, rabbitmq
from reference_services.common.crashpoints import CRASH_POINTS
from reference_services.publisher.confirming_publisher import (
    ConfirmingPublisher,
    OutgoingMessage,
    PublishError,
)
from reference_services.publisher.kafka_publisher import KafkaBatchPublisher
from reference_services.publisher.models import outbox
from reference_services.publisher.relay_faults import RelayFaults
from reference_services.publisher.store import ProductStore, envelope_from_row

log = logging.getLogger(__name__)


class BatchPublisher(Protocol):
    """A broker client that returns from publish_batch only once the broker has every
    message of the batch, and raises PublishError otherwise."""

    @property
    def connected(self) -> bool: ...

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None: ...


def publisher_for(broker_url: str) -> tuple[Callable[[], BatchPublisher], Callable[[str], str]]:
    """The client to publish with and the routing key of an aggregate, by URL scheme."""
    if kafka.is_kafka_url(broker_url):
        return (lambda: KafkaBatchPublisher(broker_url)), kafka.message_key
    return (lambda: ConfirmingPublisher(broker_url)), rabbitmq.routing_key


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    publish_failures: int = 0
    connected: bool = False
    last_error: str = ""
    last_published_seq: int = 0
    started_at: float = field(default_factory=time.time)


class Relay:
    def __init__(self, store: ProductStore, broker_url: str, batch_size: int = 500,
                 poll_interval_s: float = 0.2, variant: str = "none") -> None:
        self.store = store
        self.broker_url = broker_url
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.variant = variant
        self.faults = RelayFaults()
        self.stats = RelayStats()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay", daemon=True)
        self._new_publisher, self._routing_key = publisher_for(broker_url)
        self._publisher: BatchPublisher | None = None
        # Variant relay_by_sequence_only: the highest sequence marked sent.
        self._position: int | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def wake(self) -> None:
        """Called after a write commits, so the relay does not wait for its next poll."""
        self._wake.set()

    def _ensure_publisher(self) -> BatchPublisher:
        if self._publisher is None or not self._publisher.connected:
            if self._publisher is not None:
                self._publisher.close()
            self._publisher = None
            publisher = self._new_publisher()
            publisher.connect()
            self._publisher = publisher
            log.info("relay connected to broker")
        return self._publisher

    def _run(self) -> None:
        backoff_s = 0.1
        while not self._stop.is_set():
            try:
                sent = self.relay_once()
                backoff_s = 0.1
            except PublishError as exc:
                self.stats.publish_failures += 1
                self.stats.connected = False
                self.stats.last_error = str(exc)
                log.warning("relay: %s; retrying in %.1fs", exc, backoff_s)
                if self._publisher is not None:
                    self._publisher.close()
                    self._publisher = None
                self._stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, 1.0)
                continue
            if sent == 0:
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()
        if self._publisher is not None:
            self._publisher.close()

    def relay_once(self) -> int:
        publisher = self._ensure_publisher()
        self.stats.connected = True
        with self.store.engines.reader.connect() as conn:
            rows = conn.execute(select(outbox).where(self._unsent())
                                .order_by(outbox.c.seq).limit(self.batch_size)).all()
        if not rows:
            return 0
        CRASH_POINTS.hit("relay.after_commit_before_publish")
        dropping = self.faults.take_drops(len(rows))
        if dropping:
            # Injected fault: these rows count as sent but never reach the broker.
            self.faults.record_drops([envelope_from_row(row) for row in rows[:dropping]])
            self._mark_sent([row.seq for row in rows[:dropping]])
            rows = rows[dropping:]
            if not rows:
                return dropping
        messages = []
        for row in rows:
            envelope = self.faults.maybe_corrupt(envelope_from_row(row))
            messages.append(OutgoingMessage(self._routing_key(envelope.aggregate_id),
                                            envelope.encode(), envelope.event_id))
        if self.variant == "mark_sent_before_confirm":
            # BUG (variant): rows count as sent before the broker has them; a batch that
            # never arrives is never retried.
            self._mark_sent([row.seq for row in rows])
            publisher.publish_batch(messages)
        else:
            publisher.publish_batch(messages)
            CRASH_POINTS.hit("relay.after_publish_before_mark_sent")
            self._mark_sent([row.seq for row in rows])
        self.stats.published += len(rows)
        self.stats.batches += 1
        self.stats.last_published_seq = rows[-1].seq
        return len(rows)

    def _unsent(self) -> ColumnElement[bool]:
        if self.variant == "relay_by_sequence_only":
            # BUG (variant): "after the last sequence I sent" (the relay's position,
            # resumed after a restart from the highest row marked sent). A row whose
            # transaction commits after a higher-numbered one was published is never read.
            if self._position is None:
                self._position = self.store.last_sent_seq()
            return outbox.c.seq > self._position
        return outbox.c.sent_at.is_(None)

    def _mark_sent(self, seqs: list[int]) -> None:
        self.store.mark_sent(seqs)
        if self.variant == "relay_by_sequence_only" and seqs:
            self._position = max(self._position or 0, *seqs)
