"""Message faults: duplicates, reordering, stale re-delivery, poison messages and broker
data loss.

They act on one consumer's subscription through the BrokerAdapter only, so they run
unchanged on any broker an adapter exists for. What each did is kept on the object
(counts, expected dead-letter reasons) for checkers to compare against what the consumer
reports. A fault that puts bytes on the broker itself records them (`injected` in its
details(): each body's sha256, and whether every reader of the stream reads them, as on
Kafka), so the checks resting on the broker tap can leave the harness's own messages out
of what the system under test put on the broker, and can see that the tap read them.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, replace
from typing import Any, Literal

from harness.brokers.base import BrokerAdapter
from harness.contract import envelope as env
from harness.contract import outcomes
from harness.errors import ConfigError
from harness.faults.base import Evidence, Fault

EventSource = Callable[[], list[bytes]]
DataLossHow = Literal["purge", "delete"]


def _readers(adapter: BrokerAdapter, consumer_name: str) -> str:
    """Who reads what the fault injected, for its evidence."""
    return (f"the topic {consumer_name} reads (every reader reads them)"
            if adapter.raw_reaches_every_reader else consumer_name)


def injection_record(adapter: BrokerAdapter, bodies: Iterable[bytes]) -> dict[str, Any]:
    """The record of bytes a fault put on the broker (its details' `injected`): one sha256
    per message, as the tap digests each one, and whether every reader of the event
    stream (the tap included) reads them or only the consumer they were meant for."""
    return {"digests": [hashlib.sha256(body).hexdigest() for body in bodies],
            "reaches_every_reader": adapter.raw_reaches_every_reader}


class DuplicateDelivery(Fault):
    """Publish real events again: each body from `source()` `copies` more times.

    `source` returns bodies of recently published events exactly as the publisher sent
    them (e.g. its `GET /events`, re-encoded as JSON). A correct consumer deduplicates
    them by event_id; the replica must not change. Felt when the consumer's log shows at
    least as many deduplicated deliveries of those events, after the injection, as
    duplicates were published (`log_effect` in details()).
    """

    slows_replication = False

    def __init__(self, adapter: BrokerAdapter, consumer_name: str, source: EventSource,
                 copies: int) -> None:
        if copies < 1:
            raise ConfigError("copies", f"must be at least 1, got {copies}",
                              "publish each event one or more extra times")
        self.adapter = adapter
        self.consumer_name = consumer_name
        self.source = source
        self.copies = copies
        self.name = f"duplicate_delivery:{consumer_name}"
        self.events = 0
        self.published = 0
        self.event_ids: list[str] = []
        self._injected: dict[str, Any] = injection_record(adapter, ())
        self._injected_at = 0.0

    def inject(self) -> None:
        bodies = list(self.source())
        duplicates = [body for _ in range(self.copies) for body in bodies]
        self._injected_at = time.time()  # the consumer's log is judged from here on
        self.adapter.publish_raw(self.consumer_name, duplicates)
        self.events = len(bodies)
        self.published = len(duplicates)
        self.event_ids = [env.decode(body).event_id for body in bodies]
        self._injected = injection_record(self.adapter, duplicates)

    def heal(self) -> None:
        """Nothing to undo: the duplicates are meant to be consumed."""

    def details(self) -> dict[str, Any]:
        return {"log_effect": {
            "outcome": outcomes.DEDUPLICATED, "after": self._injected_at,
            "at_least": self.published, "event_ids": list(self.event_ids),
            "since": f"{self.published} duplicates of them were published"},
            "injected": self._injected}

    def evidence(self) -> Evidence:
        return Evidence(self.published > 0,
                        f"published {self.published} duplicates ({self.copies} extra copies "
                        f"of {self.events} events) to "
                        f"{_readers(self.adapter, self.consumer_name)}")


class Reorder(Fault):
    """Hold back the consumer's events while injected; on heal, deliver them newest first,
    so older versions of an aggregate arrive after newer ones. Felt when the consumer's
    log shows at least one stale skip after the release (`log_effect` in details())."""

    def __init__(self, adapter: BrokerAdapter, consumer_name: str,
                 rng: random.Random) -> None:
        self.adapter = adapter
        self.consumer_name = consumer_name
        self.rng = rng
        self.name = f"reorder:{consumer_name}"
        self.released = 0
        self._diverted = False
        self._released_at = 0.0

    def inject(self) -> None:
        self.adapter.divert(self.consumer_name)
        self._diverted = True

    def heal(self) -> None:
        if self._diverted and not self._released_at:
            # Taken before the release: the consumer may skip the first stale message
            # before release() even returns.
            self._released_at = time.time()
        # release() of a consumer that is not diverted moves nothing and returns 0.
        self.released += self.adapter.release(self.consumer_name, "reversed", self.rng)

    def details(self) -> dict[str, Any]:
        return {"log_effect": {
            "outcome": outcomes.STALE, "after": self._released_at, "at_least": 1,
            "since": f"{self.released} held messages were released newest first"}}

    def evidence(self) -> Evidence:
        return Evidence(self._diverted and self.released >= 2,
                        f"held {self.released} messages for {self.consumer_name} and "
                        f"released them in reversed order")


def stale_candidates(events: Sequence[env.Envelope], newer_before: float
                     ) -> list[env.Envelope]:
    """The events of `events` whose aggregate has a newer version among them that was
    written by `newer_before` (so the relay has had time to put it on the broker), oldest
    first."""
    newest: dict[str, int] = {}
    for event in events:
        if event.occurred_at <= newer_before:
            newest[event.aggregate_id] = max(event.version,
                                             newest.get(event.aggregate_id, event.version))
    return sorted((e for e in events if e.version < newest.get(e.aggregate_id, e.version)),
                  key=lambda e: e.sequence)


class StaleRedelivery(Fault):
    """Produce older versions of recent events again, after their newer versions: what
    reordering looks like on a log that keeps each aggregate's order (Kafka), and works
    on any broker that takes raw bytes.

    Each is the published event with a new event_id, as a replay by another path mints
    them (a backfill job, a second relay, a connector restarted from an old checkpoint):
    the inbox cannot recognise it, so only the consumer's version check keeps the replica
    from going back. An exact copy would be deduplicated before any version check (that
    is the `duplicate` fault). Chosen with `rng` among the events from `source()` whose
    aggregate has a newer version there written at least `settle_s` before the injection.
    Felt when the consumer's log shows every one of them stale after the injection
    (`log_effect` in details()); where every reader reads them, the tap must show each
    after a newer version of its product.
    """

    slows_replication = False

    def __init__(self, adapter: BrokerAdapter, consumer_name: str, source: EventSource,
                 count: int, settle_s: float, rng: random.Random) -> None:
        if count < 1:
            raise ConfigError("count", f"must be at least 1, got {count}",
                              "produce one or more older versions again")
        self.adapter = adapter
        self.consumer_name = consumer_name
        self.source = source
        self.count = count
        self.settle_s = settle_s
        self.rng = rng
        self.name = f"stale_redelivery:{consumer_name}"
        self.candidates = 0
        self.events: list[env.Envelope] = []  # as produced, with their new event ids
        self._injected: dict[str, Any] = injection_record(adapter, ())
        self._injected_at = 0.0

    def inject(self) -> None:
        recent = [env.decode(body) for body in self.source()]
        candidates = stale_candidates(recent, time.time() - self.settle_s)
        chosen = sorted(self.rng.sample(candidates, min(self.count, len(candidates))),
                        key=lambda e: e.sequence)
        self.events = [replace(e, event_id=str(uuid.UUID(int=self.rng.getrandbits(128),
                                                         version=4)))
                       for e in chosen]
        bodies = [e.encode() for e in self.events]
        self._injected_at = time.time()  # the consumer's log is judged from here on
        self.adapter.publish_raw(self.consumer_name, bodies)
        self.candidates = len(candidates)
        self._injected = {**injection_record(self.adapter, bodies),
                          "events": [asdict(e) for e in self.events]}

    def heal(self) -> None:
        """Nothing to undo: the stale events are meant to be consumed (and refused)."""

    def details(self) -> dict[str, Any]:
        return {"log_effect": {
            "outcome": outcomes.STALE, "after": self._injected_at,
            "at_least": len(self.events), "event_ids": [e.event_id for e in self.events],
            "since": f"{len(self.events)} older versions were produced again, under new "
                     "event ids, after newer ones"},
            "injected": self._injected}

    def evidence(self) -> Evidence:
        return Evidence(bool(self.events),
                        f"produced {len(self.events)} older versions of recent events again "
                        f"(of {self.candidates} with a newer version) to "
                        f"{_readers(self.adapter, self.consumer_name)}")


# Every kind of poison message, and a substring of the reason `envelope.decode` gives.
POISON_REASONS: dict[str, str] = {
    "malformed_json": outcomes.REASON_MALFORMED_JSON,
    "not_an_object": outcomes.REASON_NOT_AN_OBJECT,
    "unknown_type": outcomes.REASON_UNKNOWN_TYPE,
    "missing_field": outcomes.REASON_MISSING_FIELD,
    "wrong_type": outcomes.REASON_WRONG_TYPE,
    "unknown_schema_version": outcomes.REASON_UNKNOWN_SCHEMA,
    "oversized": outcomes.REASON_OVERSIZED,
    "bad_aggregate_id": outcomes.REASON_BAD_AGGREGATE_ID,
}
POISON_KINDS = tuple(POISON_REASONS)


def _valid_event(rng: random.Random) -> dict[str, Any]:
    """A well-formed ProductUpserted; each poison kind breaks exactly one thing in it. The
    event_id is a fresh uuid4 so no two poison bodies are ever the same bytes."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": env.PRODUCT_UPSERTED,
        "aggregate_id": str(rng.randint(1, 10_000)),
        "version": rng.randint(1, 50),
        "sequence": rng.randint(1, 1_000_000),
        "occurred_at": 1_700_000_000.0 + rng.random(),
        "schema_version": env.SCHEMA_VERSION,
        "payload": {"name": "poison", "category": "chaos", "price": rng.randint(1, 9999),
                    "stock": rng.randint(0, 100), "restricted_note": ""},
    }


def _encode(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def poison_body(kind: str, rng: random.Random) -> bytes:
    """One message body of that kind; `envelope.decode` rejects it with an EnvelopeError
    whose reason contains POISON_REASONS[kind]."""
    event = _valid_event(rng)
    if kind == "malformed_json":
        # Cut short just after the uuid: never valid JSON, always distinct bytes.
        encoded = _encode(event)
        end = encoded.index(event["event_id"].encode()) + len(event["event_id"])
        return encoded[: end + rng.randint(1, 30)]
    if kind == "not_an_object":
        return _encode([event])
    if kind == "unknown_type":
        event["type"] = "ProductRenamed"
    elif kind == "missing_field":
        del event[rng.choice(["type", "aggregate_id", "version", "sequence", "payload"])]
    elif kind == "wrong_type":
        event["version"] = str(event["version"])
    elif kind == "unknown_schema_version":
        event["schema_version"] = env.SCHEMA_VERSION + rng.randint(1, 99)
    elif kind == "oversized":
        event["payload"]["restricted_note"] = "x" * (env.MAX_MESSAGE_BYTES + 1)
    elif kind == "bad_aggregate_id":
        event["aggregate_id"] = f"sku-{rng.randint(1, 10_000)}"
    else:
        raise ConfigError("kinds", f"unknown poison kind {kind!r}",
                          f"use one of {', '.join(POISON_KINDS)}")
    return _encode(event)


class PoisonMessages(Fault):
    """Publish messages the consumer must dead-letter, one per entry of `kinds`.

    `injected` (kind -> count), `expected_reasons` (kind -> substring of the dead-letter
    reason) and `by_digest` (sha256 of the body -> kind, as the consumer's dead-letter store
    keys them) let a checker match dead letters to what was injected.
    """

    slows_replication = False

    def __init__(self, adapter: BrokerAdapter, consumer_name: str, kinds: Sequence[str],
                 rng: random.Random) -> None:
        unknown = sorted(set(kinds) - set(POISON_KINDS))
        if unknown:
            raise ConfigError("kinds", f"unknown poison kinds {unknown}",
                              f"use kinds from {', '.join(POISON_KINDS)}")
        if not kinds:
            raise ConfigError("kinds", "is empty", "name at least one poison kind")
        self.adapter = adapter
        self.consumer_name = consumer_name
        self.kinds = list(kinds)
        self.rng = rng
        self.name = f"poison_messages:{consumer_name}"
        self.expected_reasons = {kind: POISON_REASONS[kind] for kind in self.kinds}
        self.injected: dict[str, int] = {}
        self.by_digest: dict[str, str] = {}
        self._injected: dict[str, Any] = injection_record(adapter, ())

    def bodies(self) -> list[tuple[str, bytes]]:
        """Fresh (kind, body) pairs, one per entry of `kinds`."""
        return [(kind, poison_body(kind, self.rng)) for kind in self.kinds]

    def inject(self) -> None:
        batch = self.bodies()
        self.adapter.publish_raw(self.consumer_name, [body for _, body in batch])
        self.injected = dict(Counter(kind for kind, _ in batch))
        self.by_digest = {hashlib.sha256(body).hexdigest(): kind for kind, body in batch}
        self._injected = injection_record(self.adapter, [body for _, body in batch])

    def heal(self) -> None:
        """Nothing to undo: the consumer is expected to dead-letter them."""

    def details(self) -> dict[str, Any]:
        return {"poison": dict(self.injected), "expected_reasons": dict(self.expected_reasons),
                "injected": self._injected}

    def evidence(self) -> Evidence:
        total = sum(self.injected.values())
        counts = ", ".join(f"{k}={n}" for k, n in sorted(self.injected.items()))
        return Evidence(total == len(self.kinds),
                        f"published {total} poison messages to "
                        f"{_readers(self.adapter, self.consumer_name)}"
                        + (f" ({counts})" if counts else ""))


class BrokerDataLoss(Fault):
    """The broker loses what waits for a consumer: its queue is purged, or deleted outright
    (the consumer re-creates it when it reconnects; events published meanwhile are gone).

    Stop the consumer first so that a backlog exists to be lost.
    """

    slows_replication = False

    def __init__(self, adapter: BrokerAdapter, consumer_name: str, how: DataLossHow) -> None:
        if how not in ("purge", "delete"):
            raise ConfigError("how", f"unknown data loss {how!r}", "use 'purge' or 'delete'")
        self.adapter = adapter
        self.consumer_name = consumer_name
        self.how = how
        self.name = f"broker_data_loss:{how}:{consumer_name}"
        self.destroyed = 0
        self._injected = False

    def inject(self) -> None:
        if self.how == "purge":
            self.destroyed = self.adapter.purge(self.consumer_name)
        else:
            self.destroyed = self.adapter.delete_queue(self.consumer_name)
        self._injected = True

    def heal(self) -> None:
        """Lost data stays lost; the consumer restores its queue itself on reconnect."""

    def evidence(self) -> Evidence:
        verb = "purged" if self.how == "purge" else "deleted"
        return Evidence(self._injected and self.destroyed > 0,
                        f"{verb} the queue of {self.consumer_name}: "
                        f"{self.destroyed} messages destroyed")
