"""Checks over what the publisher published and what the consumer recorded per delivery.

- no_lost_updates: every published event was processed by the consumer (applied, found
  stale because a newer version was already there, or superseded by a resync).
- effect_once: every stock delta took effect exactly once, however often it was delivered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from harness.checkers.base import CheckResult, sample

PROCESSED = ("applied", "stale", "resynced", "deduplicated")
SUPERSEDED = ("stale", "resynced")


def _describe(event: dict[str, Any]) -> str:
    return (f"{event['type']} product {event['aggregate_id']} v{event['version']} "
            f"seq {event['sequence']}")


def _superseded(event: dict[str, Any], repaired: AbstractSet[int] | None) -> bool:
    """A resync rewrote the product: its lost event's effect came in through the repair.
    `repaired` None means a full resync (everything was rewritten)."""
    return repaired is None or int(event["aggregate_id"]) in repaired


def no_lost_updates(published: Sequence[dict[str, Any]],
                    deliveries: Sequence[dict[str, Any]],
                    repaired: AbstractSet[int] | None = frozenset()) -> CheckResult:
    processed = {d["event_id"] for d in deliveries if d["outcome"] in PROCESSED}
    missing = [e for e in published if e["event_id"] not in processed]
    lost = [e for e in missing if not _superseded(e, repaired)]
    recovered = len(missing) - len(lost)
    if not lost:
        return CheckResult("no_lost_updates", True,
                           f"all {len(published)} published events were processed"
                           + (f" or repaired by resync ({recovered} never arrived)"
                              if recovered else ""))
    unsent = [e for e in lost if e.get("sent_at") is None]
    detail = (f"lost updates: {len(lost)} of {len(published)} published events never "
              f"reached the replica ({sample([_describe(e) for e in lost], 3)})")
    if unsent:
        detail += f"; {len(unsent)} of them were never relayed from the outbox"
    return CheckResult("no_lost_updates", False, detail,
                       {"lost_event_ids": [e["event_id"] for e in lost[:100]]})


def effect_once(published: Sequence[dict[str, Any]],
                deliveries: Sequence[dict[str, Any]],
                repaired: AbstractSet[int] | None = frozenset()) -> CheckResult:
    deltas = {e["event_id"]: e for e in published if e["type"] == "StockAdjusted"}
    applied = Counter(d["event_id"] for d in deliveries
                      if d["outcome"] == "applied" and d["event_id"] in deltas)
    superseded = {d["event_id"] for d in deliveries if d["outcome"] in SUPERSEDED}
    delivered = Counter(d["event_id"] for d in deliveries if d["event_id"] in deltas)
    processed = Counter(d["event_id"] for d in deliveries
                        if d["outcome"] in ("applied", "stale", "resynced"))
    reprocessed = [eid for eid, n in processed.items() if n > 1]
    twice = [eid for eid, n in applied.items() if n > 1]
    never = [eid for eid in deltas if applied[eid] == 0 and eid not in superseded
             and not _superseded(deltas[eid], repaired)]
    redelivered = sum(1 for n in delivered.values() if n > 1)
    if not twice and not never and not reprocessed:
        return CheckResult(
            "effect_once", True,
            f"all {len(deltas)} stock deltas took effect exactly once "
            f"({redelivered} were delivered more than once)")
    parts = []
    if never:
        parts.append(f"{len(never)} stock deltas never applied "
                     f"({sample([_describe(deltas[e]) for e in never], 3)})")
    if reprocessed:
        shown = [f"{eid[:8]} x{processed[eid]}" for eid in reprocessed]
        parts.append(f"{len(reprocessed)} events processed more than once instead of being "
                     f"deduplicated ({sample(shown, 3)})")
    if twice:
        parts.append(f"{len(twice)} stock deltas applied more than once "
                     f"({sample([_describe(deltas[e]) for e in twice], 3)})")
    return CheckResult("effect_once", False,
                       f"not exactly once: {'; '.join(parts)}",
                       {"never_applied": never[:100], "applied_twice": twice[:100],
                        "processed_twice": reprocessed[:100]})
