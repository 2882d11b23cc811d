"""Consumes the product-events topic as one member of the consumer group named after the
consumer, in batches applied in one local transaction each.

Kafka keeps a consumer's progress as an offset per partition, not an acknowledgement per
message. This worker keeps that offset in its own database: the applier writes it in the
same transaction as the batch it follows, and every assignment seeks to it. After any
crash the replica and its position in the log agree, without broker transactions. Kafka's
committed offsets are written after the database commit, for monitoring only (lag tools
read them); they are never read back. An event the relay put on the log twice (it crashed
between publishing and marking sent) sits at two offsets: the inbox makes the second a
no-op.

Data loss is detected, logged and listed in /health (resync hooks act on it later):
- before a partition resumes from a stored position, the record just before it is read
  again and compared with the digest stored with the position. A different record, or
  none, means the log was replaced under the consumer (topic deleted and recreated, a
  broker that lost its data): the partition is read again from its start;
- an offset out of range (retention passed the position);
- the topic vanishing while the consumer holds positions in it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError

from harness.contract.envelope import EnvelopeError, decode
from harness.contract.naming import REASON_HEADER, consumer_group
from reference_services.common import kafka
from reference_services.common.crashpoints import CRASH_POINTS
from reference_services.consumer.applier import (
    Applier,
    DatabaseUnavailable,
    IncomingMessage,
    PartitionPosition,
    ResyncUnavailable,
    db_retry_pause_s,
)
from reference_services.consumer.models import consumer_offsets

log = logging.getLogger(__name__)

# BUG (variant): each batch's offsets are committed to Kafka as the batch is handed over,
# before its database transaction (what enable.auto.commit does at its next tick, made
# deterministic), and assignments resume from Kafka's committed offsets: a crash in between
# skips the batch.
AUTOCOMMIT_OFFSETS = "autocommit_offsets"
# BUG (variant): no stored positions; every assignment starts at the end of the log.
OFFSET_RESET_LATEST = "offset_reset_latest"
POISON_REQUEUE_LOOP = "poison_requeue_loop"

_OUT_OF_RANGE = (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE)

# A member restarted after SIGKILL gets no partitions until the group's coordinator has
# expired the dead member's session. Measured against Tansu 0.6 (memory storage, one member
# killed and a new one joining 1 s later): session 6 s -> partitions after 11 s, 3 s -> 7 s,
# 2 s -> 4 s, 1.5 s -> 1 s. Static membership (group.instance.id) does not help there: a
# static member waits 6 s for partitions on every join, first or not. The heartbeat runs
# on librdkafka's own thread, so a long batch never costs the session; a link down longer
# than the session costs a rebalance, after which every member resumes from its stored
# positions (positions stay correct whoever owns a partition).
GROUP_SESSION = {"session.timeout.ms": 1500, "heartbeat.interval.ms": 400}
# How long Tansu may hold a fetch. Tansu on S3 storage holds every fetch this long, and
# reads older batches from the object store within it: what it has read by then is all
# the fetch returns. Measured (one reader, 2000 records in batches of 4, read from offset
# 0): 50 ms -> 9 records/s, 100 ms -> 50/s, 200 ms -> 200/s, 500 ms -> 360/s. So at 50 ms a
# consumer resuming from its stored positions after a restart reads far slower than the
# 200 writes/s of a load, and its lag only grows. 300 ms drains faster than that load; a
# consumer that keeps up waits at most that much longer per fetch, yet fewer fetches also
# load the object store less (steady_state seed 818181: lag p50 240 ms, p99 540 ms, where
# 50 ms had given p50 370-490 ms, p99 1.0-2.7 s).
FETCH_WAIT = {"fetch.wait.max.ms": 300}


def digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def body_of(message: Message) -> bytes:
    """A record's value; a null value (a tombstone) counts as empty, hence poison."""
    value = message.value()
    return value if isinstance(value, bytes) else b""


@dataclass
class KafkaWorkerStats:
    connected: bool = False
    batches: int = 0
    messages: int = 0
    retries: int = 0
    last_error: str = ""
    assignment: list[int] = field(default_factory=list)
    data_loss: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ReceivedRecord:
    message: Message
    partition: int
    offset: int
    received_at: float

    @property
    def body(self) -> bytes:
        return body_of(self.message)


def positions_after(topic: str, batch: Sequence[ReceivedRecord]) -> list[PartitionPosition]:
    """Per partition, the position just after the batch's last record from it."""
    last: dict[int, ReceivedRecord] = {}
    for item in batch:
        last[item.partition] = item
    return [PartitionPosition(topic, partition, item.offset + 1, digest(item.body))
            for partition, item in sorted(last.items())]


class KafkaWorker:
    def __init__(self, applier: Applier, broker_url: str, consumer_name: str,
                 variant: str = "none", batch_max: int = 500, quiet_s: float = 0.002,
                 max_batch_age_s: float = 0.05, check_timeout_s: float = 3.0) -> None:
        self.applier = applier
        self.bootstrap = kafka.bootstrap_servers(broker_url)
        self.consumer_name = consumer_name
        self.variant = variant
        self.batch_max = batch_max
        self.quiet_s = quiet_s
        self.max_batch_age_s = max_batch_age_s
        self.check_timeout_s = check_timeout_s
        self.topic = kafka.EVENTS_TOPIC
        self.dead_letter_topic = kafka.dead_letter_topic(consumer_name)
        self.stats = KafkaWorkerStats()
        self._keeps_positions = variant not in (AUTOCOMMIT_OFFSETS, OFFSET_RESET_LATEST)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consumer", daemon=True)
        self._consumer: Consumer | None = None
        self._dead_letters: Producer | None = None
        self._pending: list[ReceivedRecord] = []
        self._pending_since = 0.0
        self._vanish_reported = False
        self._db_failures = 0  # consecutive batches whose transaction failed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def health(self) -> dict[str, Any]:
        stats = self.stats
        return {"connected": stats.connected, "batches": stats.batches,
                "messages": stats.messages, "retries": stats.retries,
                "last_error": stats.last_error, "assignment": list(stats.assignment),
                "data_loss": list(stats.data_loss)}

    # -- connection ----------------------------------------------------------------------
    def _run(self) -> None:
        backoff_s = 0.1
        while not self._stop.is_set():
            try:
                self._consume()
                backoff_s = 0.1
            except (KafkaException, kafka.KafkaUnavailable, DBAPIError) as exc:
                # DBAPIError: the database failed outside a batch (reading the stored
                # positions on an assignment); the rebuilt consumer reads them again.
                self.stats.connected = False
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("consumer: %s; reconnecting in %.1fs", self.stats.last_error,
                            backoff_s)
                self._stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, 1.0)

    def _offset_reset(self) -> str:
        if self.variant == AUTOCOMMIT_OFFSETS:
            return "earliest"
        if self.variant == OFFSET_RESET_LATEST:
            return "latest"
        # Every assignment gives each partition an explicit start, so the client resets a
        # position only when the log no longer holds it: data loss, reported, never skipped
        # over silently.
        return "error"

    def _consume(self) -> None:
        kafka.ensure_topic(self.bootstrap, self.topic, kafka.EVENTS_PARTITIONS)
        kafka.ensure_topic(self.bootstrap, self.dead_letter_topic, 1)
        consumer = Consumer({
            **kafka.consumer_config(self.bootstrap, consumer_group(self.consumer_name),
                                    self._offset_reset()),
            **GROUP_SESSION, **FETCH_WAIT,
            "error_cb": self._on_client_error})
        dead_letters = Producer(kafka.producer_config(self.bootstrap, self.consumer_name, 5.0))
        self._consumer, self._dead_letters = consumer, dead_letters
        try:
            consumer.subscribe([self.topic], on_assign=self._on_assign,
                               on_revoke=self._on_revoke, on_lost=self._on_lost)
            log.info("consuming %s as group %s", self.topic, consumer_group(self.consumer_name))
            while not self._stop.is_set():
                if self._pending:
                    messages = consumer.consume(self.batch_max - len(self._pending),
                                                self.quiet_s)
                else:
                    # poll returns on the first record; consume would wait out its whole
                    # timeout for a full batch, adding that to every event's lag.
                    first = consumer.poll(0.1)
                    messages = [first] if first is not None else []
                taken = sum(self._take(message) for message in messages)
                if self._pending and (
                        taken == 0 or len(self._pending) >= self.batch_max
                        or time.monotonic() - self._pending_since >= self.max_batch_age_s):
                    self._flush()
        finally:
            # Whatever was not applied is read again from the stored positions.
            self._pending.clear()
            self.stats.connected = False
            self.stats.assignment = []
            consumer.close()
            dead_letters.flush(2.0)

    def _on_client_error(self, error: KafkaError) -> None:
        # Broker down, connection refused...: librdkafka reconnects by itself.
        self.stats.last_error = str(error)
        log.warning("kafka client: %s", error)

    # -- rebalances ----------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._vanish_reported = False
        if self.variant == OFFSET_RESET_LATEST:
            # BUG (variant): whatever was published while no instance read a partition is
            # skipped.
            for tp in partitions:
                tp.offset = OFFSET_END
        elif self.variant != AUTOCOMMIT_OFFSETS:  # that one trusts Kafka's committed offsets
            self._resume_stored(partitions)
        consumer.assign(partitions)
        self.stats.assignment = sorted(tp.partition for tp in partitions)
        self.stats.connected = True
        log.info("assigned %s", ", ".join(f"{tp.partition}@{tp.offset}" for tp in partitions)
                 or "no partitions")

    def _on_revoke(self, _consumer: Consumer, _partitions: list[TopicPartition]) -> None:
        # Nobody reads these partitions until this returns (eager rebalancing): finish the
        # batch in hand so its positions are stored for the next owner.
        self._flush()
        self.stats.assignment = []

    def _on_lost(self, _consumer: Consumer, _partitions: list[TopicPartition]) -> None:
        # The group may already have given them to another member: leave the batch in hand
        # to whoever resumes from the stored positions.
        self._pending.clear()
        self.stats.assignment = []
        self.stats.connected = False

    def _resume_stored(self, partitions: list[TopicPartition]) -> None:
        stored = self._stored_positions()
        began = time.monotonic()
        problems = self._check_positions({tp.partition: stored[tp.partition]
                                          for tp in partitions if tp.partition in stored})
        log.info("checked the log behind %d stored positions in %.2fs",
                 sum(1 for tp in partitions if tp.partition in stored),
                 time.monotonic() - began)
        for partition, problem in problems.items():
            self._data_loss(partition, *problem)
        if problems:
            # Those positions count in a log that is gone: reported once, then forgotten,
            # so the next assignment does not report the same loss again.
            self._forget_positions(sorted(problems))
        for tp in partitions:
            position = stored.get(tp.partition)
            tp.offset = (position.next_offset
                         if position is not None and tp.partition not in problems
                         else OFFSET_BEGINNING)

    def _stored_positions(self) -> dict[int, PartitionPosition]:
        with self.applier.writer.connect() as conn:
            rows = conn.execute(select(consumer_offsets)
                                .where(consumer_offsets.c.topic == self.topic)).all()
        return {row.partition: PartitionPosition(row.topic, row.partition, row.next_offset,
                                                 row.last_digest) for row in rows}

    def _forget_positions(self, partitions: list[int]) -> None:
        with self.applier.lock, self.applier.writer.begin() as conn:
            conn.execute(delete(consumer_offsets).where(
                consumer_offsets.c.topic == self.topic,
                consumer_offsets.c.partition.in_(partitions)))

    def _check_positions(self, positions: dict[int, PartitionPosition]
                         ) -> dict[int, tuple[str, str]]:
        """Read the record before each stored position with a throwaway, group-less
        consumer; returns (kind, detail) for each partition whose log is not the one its
        position counts in.

        A log that ends before that record is known from the high watermark the fetch
        responses carry (not from a ListOffsets request, which Tansu answers short of the
        true end). A broker that does not answer within check_timeout_s proves nothing
        either way: the partition resumes unchecked, with a warning."""
        if not positions:
            return {}
        probe = Consumer({**kafka.consumer_config(
            self.bootstrap, f"{self.consumer_name}.position-check", "error"), **FETCH_WAIT})
        found: dict[int, tuple[str, str] | None] = {}
        try:
            probe.assign([TopicPartition(self.topic, p, pos.next_offset - 1)
                          for p, pos in positions.items()])
            deadline = time.monotonic() + self.check_timeout_s
            while len(found) < len(positions) and time.monotonic() < deadline:
                message = probe.poll(0.05)
                if message is not None:
                    partition, error = message.partition(), message.error()
                    # Any other error is transient: keep waiting for the record.
                    answered = error is None or error.code() in _OUT_OF_RANGE
                    if answered and partition is not None and partition in positions \
                            and partition not in found:
                        found[partition] = record_problem(positions[partition], message)
                for waiting in set(positions) - set(found):
                    start, end = probe.get_watermark_offsets(
                        TopicPartition(self.topic, waiting), cached=True)
                    if 0 <= end < positions[waiting].next_offset:
                        found[waiting] = log_ends_before(positions[waiting], end)
                    elif start > positions[waiting].next_offset:
                        # Records the consumer never read were deleted (the broker may
                        # then have nothing to answer with until a new record arrives).
                        found[waiting] = log_starts_after(positions[waiting], start)
                    elif start == positions[waiting].next_offset:
                        # Everything before the position is gone, nothing after it: no
                        # record to compare, and nothing the consumer missed.
                        found[waiting] = None
        finally:
            probe.close()
        for partition in sorted(set(positions) - set(found)):
            log.warning("partition %d: no answer about offset %d within %.1fs; resuming "
                        "unchecked", partition, positions[partition].next_offset - 1,
                        self.check_timeout_s)
        return {p: problem for p, problem in found.items() if problem is not None}

    # -- batches -------------------------------------------------------------------------
    def _take(self, message: Message) -> int:
        error, partition, offset = message.error(), message.partition(), message.offset()
        if error is not None:
            self._on_message_error(partition, error)
            return 0
        assert partition is not None and offset is not None  # set on every record
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(ReceivedRecord(message, partition, offset, time.time()))
        return 1

    def _on_message_error(self, partition: int | None, error: KafkaError) -> None:
        if error.code() in _OUT_OF_RANGE and partition is not None:
            self._data_loss(partition, "offset_out_of_range",
                            f"the log no longer holds the consumer's position: {error}")
            self._seek(partition, OFFSET_BEGINNING)
        elif error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            if not self._vanish_reported and self._stored_positions():
                self._vanish_reported = True
                self._data_loss(None, "topic_vanished",
                                f"topic {self.topic} is gone while the consumer holds "
                                f"positions in it: {error}")
        elif error.fatal():
            raise KafkaException(error)
        else:
            self.stats.last_error = str(error)
            log.warning("consumer: %s", error)

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        messages = [IncomingMessage(item.body, False, item.received_at) for item in batch]
        positions = positions_after(self.topic, batch)
        if self.variant == POISON_REQUEUE_LOOP and _has_poison(messages):
            # BUG (variant): an unprocessable record is read again instead of being
            # dead-lettered, so it comes back forever and blocks its partitions.
            self._rewind(batch)
            self.stats.retries += 1
            return
        if self.variant == AUTOCOMMIT_OFFSETS:
            # BUG (variant): Kafka counts the batch consumed before the database has it.
            self._commit_to_kafka(positions, asynchronous=False)
        try:
            result = self.applier.apply_batch(
                messages, positions if self._keeps_positions else ())
        except ResyncUnavailable as exc:
            # Nothing of the batch committed: read it again after a pause.
            self._rewind(batch)
            self.stats.retries += 1
            self.stats.last_error = f"ResyncUnavailable: {exc}"
            log.warning("consumer: %s; retrying the batch", exc)
            self._stop.wait(0.5)
            return
        except DatabaseUnavailable as exc:
            # Perhaps committed, perhaps not: read again, the inbox drops what committed.
            self._rewind(batch)
            self.stats.retries += 1
            self.stats.last_error = f"DatabaseUnavailable: {exc}"
            self._db_failures += 1
            pause_s = db_retry_pause_s(self._db_failures)
            log.warning("consumer: database unavailable: %s; retrying the batch in %.2fs",
                        exc, pause_s)
            self._stop.wait(pause_s)
            return
        self._db_failures = 0
        self._publish_dead_letters(batch, result.dead_letter_reasons)
        CRASH_POINTS.hit("consumer.after_apply_before_ack")
        if self.variant != AUTOCOMMIT_OFFSETS:
            # Monitoring only (lag tools read it): the stored positions are the record.
            self._commit_to_kafka(positions, asynchronous=True)
        self.stats.batches += 1
        self.stats.messages += len(messages)

    def _publish_dead_letters(self, batch: Sequence[ReceivedRecord],
                              reasons: dict[int, str]) -> None:
        """The database store is the record; the topic is for operators' tools. Produced
        after the commit: a crash in between gives a second copy, never a lost one."""
        producer = self._dead_letters
        if not reasons or producer is None:
            return
        for index, reason in reasons.items():
            item = batch[index]
            producer.produce(self.dead_letter_topic, item.body, key=item.message.key(),
                             headers={REASON_HEADER: reason[:500],
                                      "x-consumer": self.consumer_name,
                                      "x-source": f"{self.topic}/{item.partition}"
                                                  f"@{item.offset}"})
        if producer.flush(5.0):
            log.warning("dead letters not confirmed by the broker; the database keeps them")

    def _commit_to_kafka(self, positions: Sequence[PartitionPosition],
                         asynchronous: bool) -> None:
        consumer = self._consumer
        if consumer is None or not positions:
            return
        offsets = [TopicPartition(p.topic, p.partition, p.next_offset) for p in positions]
        try:
            if asynchronous:
                consumer.commit(offsets=offsets, asynchronous=True)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.info("offset commit to Kafka failed: %s", exc)

    def _rewind(self, batch: Sequence[ReceivedRecord]) -> None:
        first: dict[int, int] = {}
        for item in batch:
            first.setdefault(item.partition, item.offset)
        for partition, offset in first.items():
            self._seek(partition, offset)

    def _seek(self, partition: int, offset: int) -> None:
        """A failed seek raises: the consumer is then rebuilt and resumes from the stored
        positions, rather than read on past records it never applied."""
        assert self._consumer is not None
        self._consumer.seek(TopicPartition(self.topic, partition, offset))

    def _data_loss(self, partition: int | None, kind: str, detail: str) -> None:
        self.stats.data_loss.append({"topic": self.topic, "partition": partition,
                                     "kind": kind, "detail": detail, "at": time.time()})
        log.error("data loss on %s partition %s (%s): %s; the replica needs a full resync",
                  self.topic, partition, kind, detail)


def log_ends_before(position: PartitionPosition, end: int) -> tuple[str, str]:
    return ("log_truncated",
            f"the log ends at offset {end}, before offset {position.next_offset - 1}, the "
            "last record the consumer applied")


def log_starts_after(position: PartitionPosition, start: int) -> tuple[str, str]:
    return ("log_truncated",
            f"the log now starts at offset {start}: offsets {position.next_offset}.."
            f"{start - 1}, not yet read by the consumer, were deleted")


def record_problem(position: PartitionPosition, message: Message) -> tuple[str, str] | None:
    """None if `message` is the record the position was stored after, else the loss's
    (kind, detail)."""
    expected = position.next_offset - 1
    error = message.error()
    if error is not None:
        return ("offset_out_of_range",
                f"offset {expected}, the last record applied, is out of range: {error}")
    if message.offset() == expected and digest(body_of(message)) == position.last_digest:
        return None
    return ("log_replaced",
            f"the record at offset {message.offset()} is not the one the consumer applied "
            f"at offset {expected}: the log was replaced")


def _has_poison(messages: Sequence[IncomingMessage]) -> bool:
    for message in messages:
        try:
            decode(message.body)
        except EnvelopeError:
            return True
    return False
