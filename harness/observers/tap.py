"""The broker tap: the harness's own subscription to the event stream.

It is created before the publisher starts, so it sees every event that reaches the broker,
and it is read by the harness alone: what it records is what the broker carried, whatever
the publisher's outbox or the consumer's log say. Each broker adapter provides its own
(`BrokerAdapter.open_tap`): a durable queue bound to the exchange on RabbitMQ, a consumer
group of its own on Kafka.

Per message it records the event's identity (event_id, sequence, aggregate_id, version,
type), its payload, a sha256 digest of the exact bytes, when it arrived and whether the
broker flagged it redelivered. A body that is not a valid envelope is recorded as such
(with the decoder's reason), never dropped: the checkers must see it.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.contract import envelope

# Far above any scenario's event count; past it the tap counts instead of recording, and
# says it is incomplete, so memory stays bounded on a runaway run.
MAX_RECORDS = 1_000_000
# How much of an unparseable body is kept for the report.
BODY_HEAD_BYTES = 200


def record_message(body: bytes, redelivered: bool, received_at: float) -> dict[str, Any]:
    """One tap record (plain JSON data) for one message body."""
    base: dict[str, Any] = {"digest": hashlib.sha256(body).hexdigest(), "size": len(body),
                            "received_at": received_at, "redelivered": redelivered}
    try:
        event = envelope.decode(body)
    except envelope.EnvelopeError as exc:
        return {**base, "event_id": None, "unparseable": exc.reason,
                "body_head": body[:BODY_HEAD_BYTES].decode("utf-8", "replace")}
    return {**base, "event_id": event.event_id, "sequence": event.sequence,
            "aggregate_id": event.aggregate_id, "version": event.version, "type": event.type,
            "occurred_at": event.occurred_at, "schema_version": event.schema_version,
            "payload": event.payload, "unparseable": None}


class TapRecorder:
    """The records, appended by the tap's consumer thread and read by the harness."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        self.max_records = max_records
        self.overflow = 0  # messages seen but not recorded (past max_records)
        self._records: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, record: dict[str, Any]) -> None:
        with self._lock:
            if len(self._records) < self.max_records:
                self._records.append(record)
            else:
                self.overflow += 1

    def count(self) -> int:
        with self._lock:
            return len(self._records) + self.overflow

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._records)


@dataclass
class TapStatus:
    subscription: str  # the broker-side name of the tap's subscription
    records: int = 0
    overflow: int = 0
    reconnects: int = 0
    last_error: str = ""
    # The subscription vanished at the broker while the tap ran (it re-created it): events
    # published meanwhile may be missing from the records.
    subscription_lost: bool = False
    # Offsets the broker's log skipped and, asked, showed to hold no record (a hole it left,
    # not events lost before the tap read them): what it answered, per gap.
    offset_gaps: list[str] = field(default_factory=list)
    drained: bool = False  # every message the broker held for the tap was recorded

    @property
    def complete(self) -> bool:
        return self.drained and not self.subscription_lost and self.overflow == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


class BrokerTap(ABC):
    """start() subscribes (returning once the subscription exists) and records in the
    background until stop(); drain() waits until what the broker holds for the tap has
    been recorded. stop() is bounded and idempotent: it never blocks a run's shutdown."""

    def __init__(self, subscription: str) -> None:
        self.recorder = TapRecorder()
        self.state = TapStatus(subscription)

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def drain(self, timeout_s: float) -> bool:
        """True once every message waiting for the tap is recorded (within timeout_s)."""

    @abstractmethod
    def stop(self) -> None: ...

    def records(self) -> list[dict[str, Any]]:
        return self.recorder.snapshot()

    def status(self) -> dict[str, Any]:
        self.state.records = self.recorder.count() - self.recorder.overflow
        self.state.overflow = self.recorder.overflow
        return self.state.to_dict()
