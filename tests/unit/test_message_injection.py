"""Messages the harness puts on the broker itself (duplicates, stale re-deliveries,
poison): what the faults record of them, and how the checks resting on the broker tap
leave them out where the tap reads them too (Kafka) and take them as evidence."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from harness.brokers.base import BrokerAdapter
from harness.checkers import observed
from harness.contract import envelope as env
from harness.contract import outcomes
from harness.evaluation import evaluate
from harness.faults.messages import (
    DuplicateDelivery,
    PoisonMessages,
    StaleRedelivery,
    stale_candidates,
)
from harness.observers.tap import record_message
from tests.unit.test_observed import collected_run

T0 = 1_000.0
FIELDS = {"name": "lamp", "category": "home", "price": 100, "restricted_note": ""}


class FakeAdapter:
    """Takes raw bytes as a broker would; `shared`: every reader reads them (Kafka)."""

    def __init__(self, shared: bool) -> None:
        self.raw_reaches_every_reader = shared
        self.published: list[bytes] = []

    def publish_raw(self, consumer_name: str, bodies: Sequence[bytes]) -> None:
        self.published.extend(bodies)


def adapter(shared: bool) -> BrokerAdapter:
    return cast(BrokerAdapter, FakeAdapter(shared))


def envelope(pid: int, version: int, seq: int, at: float = T0) -> env.Envelope:
    return env.Envelope(f"e{seq}", env.PRODUCT_UPSERTED, str(pid), version, seq, at + seq, 1,
                        {**FIELDS, "stock": version})


def tap_of(bodies: Sequence[bytes], partition: int = 0) -> list[dict[str, Any]]:
    """Tap records of these bodies as read from one partition, in order."""
    return [{**record_message(b, False, T0 + i), "partition": partition, "offset": i}
            for i, b in enumerate(bodies)]


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# -- the faults ------------------------------------------------------------------------------
def test_stale_candidates_are_older_versions_of_products_with_a_settled_newer_one() -> None:
    events = [envelope(1, 1, 1), envelope(1, 2, 2), envelope(2, 1, 3), envelope(2, 2, 50),
              envelope(3, 4, 4)]
    # Product 2's newer version was written after the cut: the relay may not have sent it.
    chosen = stale_candidates(events, newer_before=T0 + 10)
    assert [(e.aggregate_id, e.version) for e in chosen] == [("1", 1)]


def test_stale_redelivery_produces_older_versions_under_new_ids_reproducibly() -> None:
    recent = [envelope(1, 1, 1), envelope(1, 2, 2), envelope(1, 3, 3), envelope(2, 1, 4),
              envelope(2, 2, 5)]

    def run(seed: int) -> tuple[FakeAdapter, StaleRedelivery]:
        broker = adapter(shared=True)
        fault = StaleRedelivery(broker, "consumer", lambda: [e.encode() for e in recent],
                                count=2, settle_s=0.0, rng=random.Random(seed))
        fault.inject()
        assert isinstance(broker, FakeAdapter)
        return broker, fault

    broker, fault = run(7)
    produced = [env.decode(b) for b in broker.published]
    assert len(produced) == 2 and fault.evidence().verified
    originals = {e.sequence: e for e in recent}
    for event in produced:
        source = originals[event.sequence]
        assert event.version < 3 if event.aggregate_id == "1" else event.version == 1
        assert event.event_id != source.event_id  # the inbox cannot recognise it
        assert (event.payload, event.version, event.type) == \
            (source.payload, source.version, source.type)
    details = fault.details()
    assert details["log_effect"]["outcome"] == outcomes.STALE
    assert details["log_effect"]["at_least"] == 2
    assert details["log_effect"]["event_ids"] == [e.event_id for e in produced]
    assert details["injected"]["digests"] == [digest(b) for b in broker.published]
    assert details["injected"]["reaches_every_reader"] is True
    assert [e["event_id"] for e in details["injected"]["events"]] == \
        [e.event_id for e in produced]
    assert run(7)[0].published == broker.published  # same seed, same bytes


def test_stale_redelivery_without_candidates_has_no_evidence() -> None:
    fault = StaleRedelivery(adapter(shared=False), "consumer",
                            lambda: [envelope(1, 1, 1).encode()], 5, 0.0, random.Random(1))
    fault.inject()
    assert not fault.evidence().verified


def test_duplicates_and_poison_record_what_they_injected_and_who_reads_it() -> None:
    body = envelope(1, 1, 1).encode()
    duplicate = DuplicateDelivery(adapter(shared=False), "consumer", lambda: [body], 2)
    duplicate.inject()
    assert duplicate.details()["injected"] == {"digests": [digest(body)] * 2,
                                               "reaches_every_reader": False}
    broker = adapter(shared=True)
    poison = PoisonMessages(broker, "consumer", ["malformed_json", "oversized"],
                            random.Random(3))
    poison.inject()
    assert isinstance(broker, FakeAdapter)
    assert poison.details()["injected"] == {
        "digests": [digest(b) for b in broker.published], "reaches_every_reader": True}


# -- the tap's view ----------------------------------------------------------------------------
def fault(bodies: Sequence[bytes], shared: bool = True, **extra: Any) -> dict[str, Any]:
    return {"fault": "x", "injected": {"digests": [digest(b) for b in bodies],
                                       "reaches_every_reader": shared, **extra}}


def test_injected_copies_are_left_out_and_the_original_stays() -> None:
    original, other = envelope(1, 1, 1).encode(), envelope(2, 1, 2).encode()
    tap = tap_of([original, other, original, original])
    carried = observed.broker_carried(tap, [fault([original, original])])
    assert [(r["offset"], r["event_id"]) for r in carried] == [(0, "e1"), (1, "e2")]


def test_a_copy_the_relay_never_sent_leaves_nothing_for_the_original() -> None:
    original = envelope(1, 1, 1).encode()
    carried = observed.broker_carried(tap_of([original]), [fault([original])])
    assert carried == []
    # ... so acknowledged_writes_published sees it missing, as it must.
    op = {"ok": True, "event_id": "e1", "index": 0, "op": "create", "product_id": 1,
          "version": 1, "sequence": 1}
    excuses = observed.Excuses(frozenset(), frozenset(), frozenset(), ())
    assert not observed.acknowledged_writes_published([op], carried, None, excuses).ok


def test_nothing_is_left_out_where_the_tap_does_not_read_injections() -> None:
    original = envelope(1, 1, 1).encode()
    tap = tap_of([original])
    assert observed.broker_carried(tap, [fault([original], shared=False)]) == tap
    assert observed.tap_saw_injection(fault([original], shared=False), tap) is None


def test_a_record_read_again_at_its_offset_is_one_injection() -> None:
    poison = b"{not json"
    tap = tap_of([envelope(1, 1, 1).encode(), poison])
    again = {**tap[1], "redelivered": True}
    assert observed.broker_carried([*tap, again], [fault([poison])]) == tap[:1]


def test_injected_poison_does_not_fail_tap_matches_outbox_but_foreign_bytes_do() -> None:
    event = {**{k: v for k, v in vars(envelope(1, 1, 1)).items()}, "sent_at": T0}
    poison, stranger = b"{not json", b"[1]"
    tap = tap_of([env.from_event(event).encode(), poison, stranger])
    excuses = observed.Excuses(frozenset(), frozenset(), frozenset(), ())
    carried = observed.broker_carried(tap[:2], [fault([poison])])
    passed = observed.tap_matches_outbox(carried, None, [event], excuses, 1)
    assert passed.ok and "1 messages the harness injected itself left out" in passed.details
    failed = observed.tap_matches_outbox(observed.broker_carried(tap, [fault([poison])]),
                                         None, [event], excuses)
    assert not failed.ok and "not valid envelopes" in failed.details


def test_the_tap_must_read_every_injected_message() -> None:
    poison = [b"{a", b"{b"]
    assert observed.tap_saw_injection(fault(poison), tap_of(poison)) == (
        True, "the broker tap read 2 of the 2 messages the harness injected")
    seen = observed.tap_saw_injection(fault(poison), tap_of(poison[:1]))
    assert seen is not None and seen[0] is False and "read 1 of the 2" in seen[1]


def test_stale_versions_must_be_read_after_a_newer_version_of_their_product() -> None:
    newer, stale = envelope(1, 2, 2), envelope(1, 1, 1)
    replayed = env.Envelope("fresh", stale.type, stale.aggregate_id, stale.version,
                            stale.sequence, stale.occurred_at, 1, stale.payload)
    record = fault([replayed.encode()], events=[vars(replayed)])
    after = observed.tap_saw_injection(record, tap_of([newer.encode(), replayed.encode()]))
    assert after == (True, "the broker tap read 1 of the 1 messages the harness injected, "
                           "1 of the 1 older versions after a newer version of their product")
    before = observed.tap_saw_injection(record, tap_of([replayed.encode(), newer.encode()]))
    assert before is not None and before[0] is False
    assert observed.injected_events([record]) == [vars(replayed)]


def test_the_log_may_name_events_the_harness_made_up_itself() -> None:
    stale = envelope(1, 1, 1)
    made_up = {**vars(stale), "event_id": "fresh"}
    published = [{**vars(envelope(1, 2, 2)), "sent_at": T0}]
    tap = tap_of([env.from_event(published[0]).encode()])
    logged = [{"id": 1, "event_id": "fresh", "type": stale.type, "aggregate_id": "1",
               "version": 1, "sequence": 1, "outcome": outcomes.STALE, "redelivered": False,
               "received_at": T0 + 5, "committed_at": T0 + 5}]
    replica = [{"id": 1, **FIELDS, "stock": 2, "version": 2, "deleted": False}]
    unknown = observed.log_matches_observation(logged, tap, published, replica, [], [])
    assert not unknown.ok and "nor did the harness inject it" in unknown.details
    assert observed.log_matches_observation(logged, tap, published, replica, [], [],
                                            injected=[made_up]).ok


# -- wired into evaluate() -------------------------------------------------------------------
def poison_fault(body: bytes) -> dict[str, Any]:
    return {"fault": "poison_messages:orders", "phase": "inject", "target": "consumer",
            "verified": True, "evidence": "published 1", "at": T0, "healed_at": T0,
            "expected_lag_s": None, "poison": {"malformed_json": 1},
            "expected_reasons": {"malformed_json": "malformed JSON"},
            **fault([body])}


def test_evaluate_leaves_injected_poison_out_of_the_tap_and_wants_the_tap_to_read_it() -> None:
    poison = b"{cut short"
    base = collected_run([{"id": 1, **FIELDS, "stock": 13, "version": 3, "deleted": False}])
    dead = [{"reason": "malformed JSON: cut", "digest": digest(poison)}]
    run = replace(base, faults=[poison_fault(poison)], faults_planned=1, dead_letters=dead,
                  broker_dead_letters=1)
    read = replace(run, tap=[*(base.tap or []), record_message(poison, False, T0 + 9)])
    checks = {c.name: c for c in evaluate(read).checks}
    assert checks["tap_matches_outbox"].ok, checks["tap_matches_outbox"].details
    assert checks["fault_was_active"].ok, checks["fault_was_active"].details
    # The tap never read what the fault says it put on the shared stream: not felt.
    unread = {c.name: c for c in evaluate(run).checks}
    assert not unread["fault_was_active"].ok
    assert "the broker tap read 0 of the 1" in unread["fault_was_active"].details
