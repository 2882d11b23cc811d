"""The outbox relay: publishes unsent outbox rows in batches and marks them sent only after
the broker confirmed them. A crash anywhere leaves unconfirmed rows unsent, so they are
published again after restart (at-least-once; consumers dedupe by event_id). The marks are
written by a thread of their own (_SentMarker), off the path from a write to its publish.
After a failure it connects again as soon as the broker answers (common/reconnect.py).

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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import SQLAlchemyError

from reference_services.common import kafka, rabbitmq
from reference_services.common.crashpoints import CRASH_POINTS
from reference_services.common.reconnect import Reconnect, probe_for
from reference_services.publisher.confirming_publisher import (
    ConfirmingPublisher,
    OutgoingMessage,
    PublishedBatch,
    PublishError,
)
from reference_services.publisher.kafka_publisher import KafkaBatchPublisher
from reference_services.publisher.models import outbox
from reference_services.publisher.relay_faults import RelayFaults
from reference_services.publisher.store import ProductStore, envelope_from_row

log = logging.getLogger(__name__)


class BatchPublisher(Protocol):
    """A broker client that returns from publish_batch only once the broker has every
    message of the batch, and raises PublishError otherwise. One that can also send a
    batch without waiting for it (ConfirmingPublisher.publish_async) is used that way."""

    @property
    def connected(self) -> bool: ...

    def connect(self) -> None: ...

    def close(self) -> None: ...

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None: ...


def publisher_for(broker_url: str, on_settled: Callable[[], None]
                  ) -> tuple[Callable[[], BatchPublisher], Callable[[str], str]]:
    """The client to publish with and the routing key of an aggregate, by URL scheme."""
    if kafka.is_kafka_url(broker_url):
        return (lambda: KafkaBatchPublisher(broker_url)), kafka.message_key
    return (lambda: ConfirmingPublisher(broker_url, on_settled=on_settled)), rabbitmq.routing_key


# Unconfirmed messages the relay lets the broker hold before it waits for a confirm.
MAX_UNCONFIRMED = 2000
CONFIRM_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class _InFlight:
    batch: PublishedBatch | None  # None: published synchronously, already confirmed
    seqs: list[int]


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    publish_failures: int = 0
    connected: bool = False
    last_error: str = ""
    last_published_seq: int = 0
    started_at: float = field(default_factory=time.time)


class _SentMarker:
    """Marks confirmed rows sent on a thread of its own, so the relay publishes its next
    batch while the last one's mark waits for the database's write lock (on SQLite that
    UPDATE queues behind every request's write transaction: at 200 writes/s it held the
    next publish back 30-40 ms at times). Marks queued meanwhile go in one transaction.

    A row stays `pending` from its confirm until its mark commits, and the relay's reads
    skip pending rows, so none is published twice for this; a crash before the mark
    leaves it unsent and it is published again after the restart (at least once, as
    before), and so is a row whose mark fails."""

    def __init__(self, mark: Callable[[list[int]], None]) -> None:
        self._mark = mark
        self._changed = threading.Condition()
        self._queued: list[int] = []
        self._pending: set[int] = set()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="relay-marker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """After every queued mark is done (a clean stop publishes nothing twice)."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def hold(self, seqs: list[int]) -> None:
        """Published, not yet confirmed: skipped by reads until confirmed or released."""
        with self._changed:
            self._pending.update(seqs)

    def release(self, seqs: list[int]) -> None:
        """Not confirmed after all: read and published again."""
        with self._changed:
            self._pending.difference_update(seqs)

    def add(self, seqs: list[int]) -> None:
        with self._changed:
            self._queued.extend(seqs)
            self._pending.update(seqs)
            self._changed.notify()

    def pending(self) -> frozenset[int]:
        with self._changed:
            return frozenset(self._pending)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queued and not self._stopping:
                    self._changed.wait()
                if not self._queued:
                    return
                seqs, self._queued = self._queued, []
            try:
                self._mark(seqs)
            except SQLAlchemyError as exc:
                log.error("relay: cannot mark %d confirmed rows sent (%s); they will be "
                          "published again", len(seqs), exc)
            with self._changed:
                self._pending.difference_update(seqs)


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
        self._marker = _SentMarker(self.store.mark_sent)
        self._new_publisher, self._routing_key = publisher_for(broker_url, self._wake.set)
        # Published batches in publishing order, settled ones handed to the marker in it.
        self._in_flight: deque[_InFlight] = deque()
        self._publisher: BatchPublisher | None = None
        # Variant relay_by_sequence_only: the highest sequence marked sent.
        self._position: int | None = None

    def start(self) -> None:
        self._marker.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._marker.stop()

    def wake(self) -> None:
        """Called after a write commits, so the relay does not wait for its next poll."""
        self._wake.set()

    def _ensure_publisher(self) -> BatchPublisher:
        if self._publisher is None or not self._publisher.connected:
            if self._publisher is not None:
                self._abandon_in_flight()
                self._publisher.close()
            self._publisher = None
            publisher = self._new_publisher()
            publisher.connect()
            self._publisher = publisher
            log.info("relay connected to broker")
        return self._publisher

    def _run(self) -> None:
        reconnect = Reconnect("relay", probe_for(self.broker_url), self._stop)
        while not self._stop.is_set():
            try:
                sent = self.relay_once()
                reconnect.succeeded()
            except PublishError as exc:
                self.stats.publish_failures += 1
                self.stats.connected = False
                self.stats.last_error = str(exc)
                self._abandon_in_flight()
                if self._publisher is not None:
                    self._publisher.close()
                    self._publisher = None
                reconnect.failed(str(exc))
                reconnect.wait()
                continue
            if sent == 0:
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()
        self._finish_in_flight()
        if self._publisher is not None:
            self._publisher.close()

    def _finish_in_flight(self) -> None:
        """On a clean stop: waits for the confirms of what was sent, so it is marked."""
        try:
            while self._in_flight:
                self._settle_in_flight(wait=True)
        except PublishError as exc:
            log.warning("relay stopping: %s", exc)
        self._abandon_in_flight()

    def relay_once(self) -> int:
        publisher = self._ensure_publisher()
        self.stats.connected = True
        self._settle_in_flight(wait=False)
        while sum(len(f.seqs) for f in self._in_flight) >= MAX_UNCONFIRMED:
            self._settle_in_flight(wait=True)
        # Taken before the read: a row that leaves `pending` was marked before it left.
        pending = self._marker.pending()
        with self.store.engines.reader.connect() as conn:
            rows = conn.execute(select(outbox).where(self._unsent()).order_by(outbox.c.seq)
                                .limit(self.batch_size + len(pending))).all()
        rows = [row for row in rows if row.seq not in pending][:self.batch_size]
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
            envelope = self.faults.maybe_corrupt(
                envelope_from_row(row, fat=self.variant == "fat_events"))
            messages.append(OutgoingMessage(self._routing_key(envelope.aggregate_id),
                                            envelope.encode(), envelope.event_id))
        seqs = [row.seq for row in rows]
        if self.variant == "mark_sent_before_confirm":
            # BUG (variant): rows count as sent before the broker has them; a batch that
            # never arrives is never retried. On Kafka it does not wait for the delivery
            # reports either: waiting, it would have one batch out at a time, and an outage
            # would catch that one batch at most (none if it was stored just before).
            self._mark_sent(seqs)
            if isinstance(publisher, KafkaBatchPublisher):
                publisher.publish_unconfirmed(messages)
            else:
                publisher.publish_batch(messages)
        elif isinstance(publisher, ConfirmingPublisher):
            # Not waited for here: the next rows go out while the broker persists these.
            # Held only once sent: a batch refused at once must stay readable.
            batch = publisher.publish_async(messages)
            self._marker.hold(seqs)
            self._in_flight.append(_InFlight(batch, seqs))
        else:
            publisher.publish_batch(messages)
            self._in_flight.append(_InFlight(None, seqs))
            self._settle_in_flight(wait=False)
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

    def _settle_in_flight(self, wait: bool) -> None:
        """Hands the confirmed batches at the head of the queue to the marker, in order;
        raises PublishError at the first one the broker did not take (nack, lost
        connection, no confirm within CONFIRM_TIMEOUT_S). With `wait`, waits for the head."""
        while self._in_flight:
            head = self._in_flight[0]
            if head.batch is not None:
                age_s = time.monotonic() - head.batch.sent_at
                if not head.batch.settled() and not wait and age_s < CONFIRM_TIMEOUT_S:
                    if self._publisher is None or self._publisher.connected:
                        return
                    raise PublishError(f"connection lost with {len(head.seqs)} messages "
                                       "unconfirmed")
                head.batch.wait(max(0.0, CONFIRM_TIMEOUT_S - age_s))
            self._in_flight.popleft()
            CRASH_POINTS.hit("relay.after_publish_before_mark_sent")
            self._confirmed(head.seqs)
            wait = False

    def _abandon_in_flight(self) -> None:
        """After a failure: what the broker confirmed is marked, the rest read again."""
        for flight in self._in_flight:
            batch = flight.batch
            if batch is None or (batch.settled() and not batch.error and not batch.nacked):
                self._confirmed(flight.seqs)
            else:
                self._marker.release(flight.seqs)
        self._in_flight.clear()

    def _confirmed(self, seqs: list[int]) -> None:
        """The broker has these rows: marked sent by the marker's thread."""
        if self.variant == "relay_by_sequence_only":
            self._position = max(self._position or 0, *seqs)
        self._marker.add(seqs)

    def _mark_sent(self, seqs: list[int]) -> None:
        self.store.mark_sent(seqs)
        if self.variant == "relay_by_sequence_only" and seqs:
            self._position = max(self._position or 0, *seqs)
