"""Checks over what the publisher published and what the consumer recorded per delivery.

- no_lost_updates: every published event was processed by the consumer (applied, found
  stale because a newer version was already there, or superseded by a resync).
- effect_once: every stock delta took effect exactly once, however often it was delivered.

A resync excuses exactly what it made up for (`Excuses`): the products a partial (or
automatic) resync rewrote, and, for a full resync or an initial sync, the events at or
below the high-water mark of its export. Every event above that mark must still arrive and
be processed once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckResult, sample
from harness.contract.outcomes import APPLIED, FIRST_PROCESSING, PROCESSED, SUPERSEDED


@dataclass(frozen=True)
class Excuses:
    """Events whose own delivery is not required, because a resync brought their effect.

    `repaired_ids`: products a partial or automatic resync rewrote (any of their events
    may be missing).
    `full_resync_marks`: high-water marks of full resyncs (or initial syncs): the export
    replaced the whole replica with the source's state at that outbox sequence, so the
    events at or below the highest mark are covered; those above it are not.
    """

    repaired_ids: frozenset[int] = frozenset()
    full_resync_marks: tuple[int, ...] = ()

    @property
    def covered_upto(self) -> int | None:
        """Every event with a sequence at or below this came in through an export."""
        return max(self.full_resync_marks, default=None)

    def covers(self, event: dict[str, Any]) -> bool:
        if int(event["aggregate_id"]) in self.repaired_ids:
            return True
        mark = self.covered_upto
        return mark is not None and int(event["sequence"]) <= mark

    def describe(self) -> str:
        parts = []
        if self.full_resync_marks:
            parts.append(f"full resync at high-water mark {self.covered_upto}")
        if self.repaired_ids:
            parts.append(f"{len(self.repaired_ids)} products rewritten by a partial or "
                         "automatic resync")
        return " and ".join(parts) or "no resync"


NO_EXCUSES = Excuses()


def _describe(event: dict[str, Any]) -> str:
    return (f"{event['type']} product {event['aggregate_id']} v{event['version']} "
            f"seq {event['sequence']}")


def _above_mark(lost: Sequence[dict[str, Any]], excuses: Excuses) -> str:
    """Says why a full resync does not excuse these events: they came after its export."""
    mark = excuses.covered_upto
    if mark is None or not lost:
        return ""
    sequences = sorted(int(e["sequence"]) for e in lost)
    return (f"; they have sequences {sequences[0]}..{sequences[-1]}, above the high-water "
            f"mark {mark} of the full resync, whose export covers only events up to it")


def no_lost_updates(published: Sequence[dict[str, Any]],
                    deliveries: Sequence[dict[str, Any]],
                    excuses: Excuses = NO_EXCUSES) -> CheckResult:
    processed = {d["event_id"] for d in deliveries if d["outcome"] in PROCESSED}
    missing = [e for e in published if e["event_id"] not in processed]
    lost = [e for e in missing if not excuses.covers(e)]
    recovered = len(missing) - len(lost)
    if not lost:
        return CheckResult("no_lost_updates", True,
                           f"all {len(published)} published events were processed"
                           + (f" or covered by a resync ({recovered} never arrived; "
                              f"{excuses.describe()})" if recovered else ""))
    unsent = [e for e in lost if e.get("sent_at") is None]
    detail = (f"lost updates: {len(lost)} of {len(published)} published events never "
              f"reached the replica, by the consumer's log "
              f"({sample([_describe(e) for e in lost], 3)})")
    if unsent:
        detail += f"; {len(unsent)} of them were never relayed from the outbox"
    detail += _above_mark(lost, excuses)
    return CheckResult("no_lost_updates", False, detail,
                       {"lost_event_ids": [e["event_id"] for e in lost[:100]]})


def effect_once(published: Sequence[dict[str, Any]],
                deliveries: Sequence[dict[str, Any]],
                excuses: Excuses = NO_EXCUSES) -> CheckResult:
    deltas = {e["event_id"]: e for e in published if e["type"] == "StockAdjusted"}
    applied = Counter(d["event_id"] for d in deliveries
                      if d["outcome"] == APPLIED and d["event_id"] in deltas)
    superseded = {d["event_id"] for d in deliveries if d["outcome"] in SUPERSEDED}
    delivered = Counter(d["event_id"] for d in deliveries if d["event_id"] in deltas)
    processed = Counter(d["event_id"] for d in deliveries if d["outcome"] in FIRST_PROCESSING)
    reprocessed = [eid for eid, n in processed.items() if n > 1]
    twice = [eid for eid, n in applied.items() if n > 1]
    never = [eid for eid in deltas if applied[eid] == 0 and eid not in superseded
             and not excuses.covers(deltas[eid])]
    redelivered = sum(1 for n in delivered.values() if n > 1)
    if not twice and not never and not reprocessed:
        return CheckResult(
            "effect_once", True,
            f"all {len(deltas)} stock deltas took effect exactly once "
            f"({redelivered} were delivered more than once)")
    parts = []
    if never:
        parts.append(f"{len(never)} stock deltas never applied, by the consumer's log "
                     f"({sample([_describe(deltas[e]) for e in never], 3)})"
                     + _above_mark([deltas[e] for e in never], excuses))
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
