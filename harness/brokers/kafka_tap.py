"""The broker tap on Kafka: a consumer group of the harness's own that reads the event topic
from its beginning, in a background thread, straight from the broker.

The group commits only what the tap has recorded (offsets are stored after each record,
committed by the client in the background), so a broker that is stopped, killed or frozen
costs nothing on durable storage: the client reconnects by itself and the group resumes
where it was. A record read again (after a restart or a rebalance) is recorded again with
`redelivered` set; the checkers count events by event_id.

Kafka has no "your queue vanished" signal, so the tap keeps, per partition, the digest of
each offset it read and the next offset it expects, and calls its subscription lost
(events may be missing from the records) when the log shows it was replaced or cut:
- a record read again whose bytes differ from what that offset held (a new log under the
  same name: a broker that lost its data, the topic deleted and created again);
- the log's end, as fetch responses state it, falling below the expected offset (the log
  is shorter than what the tap already read): the partition is then read from its start;
- offsets skipped (a record past the expected offset) that the broker's own answer does
  not show to be empty.

Skipped offsets are not always lost records. A broker can leave offsets that never hold a
record: Tansu killed between reserving a batch's offsets and storing the batch answers a
fetch from those offsets with the next stored batch, and the producer's retry lands
after it (seen after a SIGKILL: 10 offsets skipped, every event of the outbox read). So
the tap asks (`GAP_SETTLE_S` after the skip, so that a batch still being stored is
there): a group-less probe fetches from the first skipped offset. Records it finds inside
the gap are recorded (the tap missed nothing the broker still holds); the offsets it finds
empty, below the record the tap read after them and above the log start, are a hole the
broker left (`TapStatus.offset_gaps`). Records lost from a log leave a moved log start
(deleted records, truncation) or other bytes (a replaced log): either, or no answer,
counts as lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from harness.brokers.kafka_client import PROBE_GROUP, READER_FETCH_WAIT_MS, consumer_config
from harness.errors import BrokerError, HarnessError
from harness.observers.tap import BrokerTap, record_message

BATCH = 1000
POLL_S = 0.2  # longest the consumer thread waits before looking at its stop flag
STOP_JOIN_S = 3.0  # stop() waits this long for the thread, then leaves it (a daemon)
LOOK_S = 0.25  # drain's polling interval
# How long after a skip the tap asks the broker about the skipped offsets: a batch still
# being stored when the tap read past it is there by then.
GAP_SETTLE_S = 1.0
GAP_PROBE_S = 5.0  # how long one question about a gap waits for the broker's answer
GAP_ASKS = 3  # questions left unanswered before the skipped offsets count as lost
_OUT_OF_RANGE = (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE)
# The tap is behind after every broker restart, and must catch up before a purge and at
# the end (when it records an event enters no verdict): it reads as a catching-up reader.
TAP_FETCH_WAIT_MS = READER_FETCH_WAIT_MS


@dataclass(frozen=True)
class Gap:
    """Offsets `first`..`end - 1` of a partition, skipped: the tap read the record at `end`
    (whose digest is `end_digest`) right after the one before `first`."""

    partition: int
    first: int
    end: int
    end_digest: str

    def describe(self) -> str:
        return f"partition {self.partition} offsets {self.first}..{self.end - 1}"


@dataclass(frozen=True)
class Seen:
    redelivered: bool  # this offset was read before, with the same bytes
    lost: str = ""  # what shows the log lost records before the tap read them; "" if not
    skipped: Gap | None = None  # offsets passed over, to ask the broker about


def judge_gap(gap: Gap, log_start: int, found: dict[int, str]) -> str:
    """What the broker's answer to a fetch from `gap.first` shows: "" when the skipped
    offsets are a hole the broker left (it holds records below them, from `log_start` on,
    and the record the tap read after them, and nothing in between but what `found`
    lists), else why records count as lost. `found` maps each offset the answer carried,
    up to and including `gap.end`, to its digest."""
    if log_start > gap.first:
        return (f"{gap.describe()} skipped, and the log now starts at offset {log_start}: "
                "records were cut before the tap read them")
    answered = found.get(gap.end)
    if answered is None:
        return (f"{gap.describe()} skipped, and the broker's answer from offset {gap.first} "
                f"carried no record at offset {gap.end}, the one the tap read after them")
    if answered != gap.end_digest:
        return (f"{gap.describe()} skipped, and offset {gap.end} now holds other bytes than "
                "when the tap read it: the log was replaced")
    return ""


@dataclass
class PartitionLedger:
    """What the tap read from one partition: each offset's digest, and the next offset."""

    digests: dict[int, str] = field(default_factory=dict)
    next_offset: int | None = None


class TapLedger:
    """Pure bookkeeping of the offsets the tap read (see the module docstring)."""

    def __init__(self) -> None:
        self.partitions: dict[int, PartitionLedger] = {}

    def observe(self, partition: int, offset: int, digest: str) -> Seen:
        ledger = self.partitions.setdefault(partition, PartitionLedger())
        before = ledger.digests.get(offset)
        lost = ""
        redelivered = False
        skipped: Gap | None = None
        if before is not None and before != digest:
            lost = (f"partition {partition} offset {offset} holds other bytes than when the "
                    "tap read it: the log was replaced")
            ledger.digests.clear()
            ledger.next_offset = None
        elif before is not None:
            redelivered = True
        elif ledger.next_offset is not None and offset > ledger.next_offset:
            skipped = Gap(partition, ledger.next_offset, offset, digest)
        ledger.digests[offset] = digest
        if ledger.next_offset is None or offset + 1 > ledger.next_offset:
            ledger.next_offset = offset + 1
        return Seen(redelivered, lost, skipped)

    def shrank(self, partition: int, log_end: int) -> str:
        """Non-empty (the reason) when the log now ends before what the tap already read;
        the partition's history is then forgotten, for it is to be read from its start."""
        ledger = self.partitions.get(partition)
        if ledger is None or ledger.next_offset is None or log_end >= ledger.next_offset:
            return ""
        reason = (f"partition {partition} now ends at offset {log_end}, before offset "
                  f"{ledger.next_offset} the tap had reached: the log was cut or replaced")
        ledger.digests.clear()
        ledger.next_offset = None
        return reason


class KafkaTap(BrokerTap):
    def __init__(self, bootstrap: str, group: str, topic: str,
                 ensure_topic: Callable[[], None]) -> None:
        """`ensure_topic` creates the topic if it does not exist yet (the tap subscribes
        before anything is published)."""
        super().__init__(group)
        self.bootstrap = bootstrap
        self.group = group
        self.topic = topic
        self._ensure_topic = ensure_topic
        self.ledger = TapLedger()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._backlog: int | None = None  # None: not assigned, or a log end not yet known
        # Skipped offsets not yet asked about: (gap, when seen (monotonic), questions asked).
        self._gaps: list[tuple[Gap, float, int]] = []
        self._consumer: Any = None
        self._thread = threading.Thread(target=self._run, name=f"tap:{group}", daemon=True)

    def start(self) -> None:
        try:
            self._ensure_topic()
            self._consumer = Consumer(consumer_config(self.bootstrap, self.group, **{
                "auto.offset.reset": "earliest",
                # Commit in the background, but only offsets stored after recording.
                "enable.auto.commit": True, "enable.auto.offset.store": False,
                "auto.commit.interval.ms": 500,
                "fetch.wait.max.ms": TAP_FETCH_WAIT_MS,
                # A topic created again under the same name is noticed within a second.
                "topic.metadata.refresh.interval.ms": 1000,
                "error_cb": self._on_client_error}))
            self._consumer.subscribe([self.topic])
        except (HarnessError, KafkaException) as exc:
            raise BrokerError(f"broker tap: cannot subscribe group {self.group} to "
                              f"{self.topic} at {self.bootstrap}: {exc}") from exc
        self._thread.start()

    def _on_client_error(self, error: KafkaError) -> None:
        # Called from consume(), on the tap's thread. librdkafka reconnects by itself; an
        # "all brokers down" event marks one lost connection.
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.state.reconnects += 1
        self.state.last_error = f"{error.name()}: {error.str()}"

    def _run(self) -> None:
        consumer = self._consumer
        try:
            while not self._stop.is_set():
                try:
                    self._record(consumer.consume(num_messages=BATCH, timeout=POLL_S))
                    self._watch_log_ends(consumer)
                    self._ask_about_gaps()
                except KafkaException as exc:
                    self.state.last_error = f"{type(exc).__name__}: {exc}"
                    self._stop.wait(POLL_S)
        finally:
            try:
                consumer.close()  # commits what was stored, leaves the group
            except (KafkaException, RuntimeError) as exc:
                self.state.last_error = f"closing: {exc}"

    def _record(self, messages: list[Any]) -> None:
        received_at = time.time()
        stored: dict[int, int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                self.state.last_error = f"{error.name()}: {error.str()}"
                continue
            body = bytes(message.value() or b"")
            partition, offset = int(message.partition()), int(message.offset())
            record = record_message(body, False, received_at)
            seen = self.ledger.observe(partition, offset, record["digest"])
            if seen.lost:
                self._lost(seen.lost)
            if seen.skipped is not None:
                with self._lock:
                    self._gaps.append((seen.skipped, time.monotonic(), 0))
            record["redelivered"] = seen.redelivered
            self.recorder.add({**record, "partition": partition, "offset": offset})
            stored[partition] = offset + 1
        if stored:
            # Recorded first, committed after: a crash in between reads it again, never
            # loses it.
            self._consumer.store_offsets(offsets=[TopicPartition(self.topic, p, o)
                                                  for p, o in stored.items()])

    def _lost(self, reason: str) -> None:
        self.state.subscription_lost = True
        self.state.last_error = reason

    def _ask_about_gaps(self) -> None:
        """Ask the broker about each gap seen GAP_SETTLE_S ago or more (on the tap's thread,
        which alone records): hole, records recorded now, or lost (see the module
        docstring)."""
        with self._lock:
            due = [item for item in self._gaps if time.monotonic() - item[1] >= GAP_SETTLE_S]
        for item in due:
            gap, seen_at, asked = item
            answer = self._fetch_gap(gap)
            with self._lock:
                self._gaps.remove(item)
                if answer is None and asked + 1 < GAP_ASKS:
                    self._gaps.append((gap, seen_at, asked + 1))
            if answer is None:
                if asked + 1 >= GAP_ASKS:
                    self._lost(f"{gap.describe()} skipped, and the broker did not answer a "
                               f"fetch from offset {gap.first} in {GAP_ASKS} tries of "
                               f"{GAP_PROBE_S:.0f}s: records may be lost")
                continue
            log_start, found = answer
            reason = judge_gap(gap, log_start, {o: d for o, (d, _r) in found.items()})
            inside = {o: r for o, (_d, r) in found.items() if gap.first <= o < gap.end}
            for offset, record in sorted(inside.items()):
                # Stored after the tap read past them: the broker holds them, the tap has them.
                self.ledger.observe(gap.partition, offset, record["digest"])
                self.recorder.add(record)
            if reason:
                self._lost(reason)
            else:
                empty = gap.end - gap.first - len(inside)
                self.state.offset_gaps.append(
                    f"{gap.describe()}: {empty} offsets hold no record (a fetch from offset "
                    f"{gap.first} answered with offset {min([*inside, gap.end])}, log start "
                    f"{log_start}); {len(inside)} records found there were recorded")

    def _fetch_gap(self, gap: Gap) -> tuple[int, dict[int, tuple[str, dict[str, Any]]]] | None:
        """The partition's log start and, per offset from `gap.first` to `gap.end`, what a
        group-less probe fetched there (digest, tap record); None without an answer within
        GAP_PROBE_S."""
        probe = Consumer(consumer_config(self.bootstrap, PROBE_GROUP, **{
            "enable.auto.commit": False, "auto.offset.reset": "error",
            "fetch.wait.max.ms": TAP_FETCH_WAIT_MS}))
        found: dict[int, tuple[str, dict[str, Any]]] = {}
        try:
            probe.assign([TopicPartition(self.topic, gap.partition, gap.first)])
            deadline = time.monotonic() + GAP_PROBE_S
            while time.monotonic() < deadline:
                message = probe.poll(0.05)
                low, _high = probe.get_watermark_offsets(
                    TopicPartition(self.topic, gap.partition), cached=True)
                error = message.error() if message is not None else None
                if message is not None and error is None:
                    body = bytes(message.value() or b"")
                    offset = int(message.offset() or 0)  # set on every record
                    record = {**record_message(body, False, time.time()),
                              "partition": gap.partition, "offset": offset}
                    found[offset] = (record["digest"], record)
                    if offset >= gap.end:
                        return max(low, 0), found
                elif error is not None and error.code() in _OUT_OF_RANGE:
                    # The log no longer holds the first skipped offset: it starts past it.
                    return max(low, gap.first + 1), found
        except KafkaException as exc:
            self.state.last_error = f"asking about {gap.describe()}: {exc}"
        finally:
            probe.close()
        return None

    def _watch_log_ends(self, consumer: Any) -> None:
        """Compare each assigned partition's log end (from the latest fetch response) with
        the tap's position: catches a cut log, and publishes the backlog for drain()."""
        assignment = consumer.assignment()
        backlog: int | None = 0 if assignment else None
        positions = consumer.position(assignment) if assignment else []
        for tp in positions:
            _low, end = consumer.get_watermark_offsets(tp, cached=True)
            if end < 0:  # no fetch answer yet
                backlog = None
                continue
            reason = self.ledger.shrank(tp.partition, end)
            if reason:
                self._lost(reason)
                consumer.seek(TopicPartition(self.topic, tp.partition, OFFSET_BEGINNING))
                backlog = None
                continue
            if backlog is not None:
                # No position yet: nothing of this partition consumed, all of it waits.
                backlog += end - tp.offset if tp.offset >= 0 else end
        with self._lock:
            self._backlog = backlog

    def read_upto(self) -> dict[int, int]:
        """Per partition, the offset after the last record the tap has read (partitions it
        read nothing of are left out)."""
        partitions = list(self.ledger.partitions.items())  # a copy: the thread adds to it
        return {p: ledger.next_offset for p, ledger in partitions
                if ledger.next_offset is not None}

    def backlog(self) -> int | None:
        """Records in the log the tap has not read yet; None when it cannot tell yet (not
        assigned, or no fetch answer yet)."""
        with self._lock:
            return self._backlog if self._thread.is_alive() else None

    def caught_up(self, timeout_s: float) -> bool:
        """True once the tap has read every record the log held, and no record arrived
        since the previous look (within timeout_s)."""
        deadline = time.monotonic() + timeout_s
        previous = -1
        while True:
            count = self.recorder.count()
            with self._lock:
                asking = bool(self._gaps)
            if self.backlog() == 0 and count == previous and not asking:
                return True
            previous = count
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOOK_S)

    def drain(self, timeout_s: float) -> bool:
        self.state.drained = self.caught_up(timeout_s)
        return self.state.drained

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_JOIN_S)
