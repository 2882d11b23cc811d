"""Writes the source committed without acknowledging them (pure function).

When the publisher dies after a write's commit and before its answer, the workload sees a
failure it cannot interpret (`indeterminate` in its history: the request may have been
processed), yet the change and its event exist at the source and must be replicated like
any other. `no_lost_updates` already covers every published event; this check makes these
ones visible and holds them to two rules:

- each event no acknowledged write accounts for matches a write left without an answer
  (same kind of write, same product): the workload is the source's only writer, so an
  event nobody wrote is one the source should not hold;
- each such event was processed by the consumer.

A run in which no write happened to commit without its answer passes, and says so: the
kill moments are random, and not every one lands between a commit and its answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from harness.checkers.base import CheckResult, sample
from harness.contract import envelope as env
from harness.contract.outcomes import PROCESSED

NAME = "committed_without_ack"


def write_kind(event: dict[str, Any]) -> str:
    """The workload operation that produces this event."""
    if event["type"] == env.PRODUCT_UPSERTED:
        return "create" if int(event["version"]) == 1 else "update"
    return "stock" if event["type"] == env.STOCK_ADJUSTED else "delete"


def _key(kind: str, product_id: Any) -> tuple[str, int | None]:
    # A create names no product before the publisher answers with its id.
    return kind, None if kind == "create" or product_id is None else int(product_id)


def unacknowledged(ops: Sequence[dict[str, Any]],
                   published: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events at the source that no acknowledged write returned."""
    acked = {op["event_id"] for op in ops if op.get("ok") and op.get("event_id")}
    return [e for e in published if e["event_id"] not in acked]


def _describe(event: dict[str, Any]) -> str:
    return (f"{write_kind(event)} of product {event['aggregate_id']} "
            f"(v{event['version']}, seq {event['sequence']})")


def committed_without_ack(ops: Sequence[dict[str, Any]],
                          published: Sequence[dict[str, Any]],
                          deliveries: Sequence[dict[str, Any]]) -> CheckResult:
    unanswered = [op for op in ops if not op.get("ok") and op.get("indeterminate")]
    events = unacknowledged(ops, published)
    available = Counter(_key(op["op"], op.get("product_id")) for op in unanswered)
    unmatched = []
    for event in events:
        key = _key(write_kind(event), event["aggregate_id"])
        if available[key]:
            available[key] -= 1
        else:
            unmatched.append(event)
    processed = {d["event_id"] for d in deliveries if d["outcome"] in PROCESSED}
    missing = [e for e in events if e["event_id"] not in processed]
    problems = []
    if unmatched:
        problems.append(
            f"the source's outbox holds {len(unmatched)} events that neither an "
            f"acknowledged write returned nor a write left without an answer can explain "
            f"({sample([_describe(e) for e in unmatched], 3)})")
    if missing:
        problems.append(
            f"{len(missing)} events committed at the source without an acknowledgement "
            f"never reached the replica, by the consumer's log "
            f"({sample([_describe(e) for e in missing], 3)})")
    if problems:
        return CheckResult(NAME, False, "; ".join(problems),
                           {"unexplained": [e["event_id"] for e in unmatched[:100]],
                            "not_processed": [e["event_id"] for e in missing[:100]]})
    if not events:
        return CheckResult(NAME, True,
                           f"no write was committed without an acknowledgement in this run: "
                           f"each of the source's {len(published)} events was returned to "
                           f"an acknowledged write; {len(unanswered)} writes got no answer "
                           "and none of them had committed")
    return CheckResult(NAME, True,
                       f"{len(events)} of the {len(unanswered)} writes left without an answer "
                       f"had committed at the source "
                       f"({sample([_describe(e) for e in events], 3)}); the consumer's log "
                       f"shows all {len(events)} processed")
