"""What each fault did to replication, from recorded deliveries (pure functions).

- impact: the worst lag of events written while the fault was active. A fault that lasts
  seconds on the replication path and leaves lag untouched did not really happen.
- recovery_s: from the heal until every event written before the heal was processed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# A fault shorter than this is judged by its own evidence (e.g. an exit status) only.
IMPACT_MIN_DURATION_S = 1.0
# Lag that counts as felt: this share of the fault's duration.
IMPACT_SHARE = 0.3


def first_processing(deliveries: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    first: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        if d.get("event_id") and d["event_id"] not in first and d["outcome"] != "dead_lettered":
            first[d["event_id"]] = d
    return first


def assess_fault(fault: dict[str, Any], published: Sequence[dict[str, Any]],
                 first: dict[str, dict[str, Any]]) -> dict[str, Any]:
    start, end = fault["at"], fault["healed_at"]
    duration = end - start
    in_window = [e for e in published if start <= e["occurred_at"] <= end]
    lags = [first[e["event_id"]]["committed_at"] - e["occurred_at"]
            for e in in_window if e["event_id"] in first]
    max_lag = max(lags, default=0.0)
    before_heal = [e for e in published if e["occurred_at"] <= end]
    pending = [e for e in before_heal if e["event_id"] not in first]
    caught_up = max((first[e["event_id"]]["committed_at"] for e in before_heal
                     if e["event_id"] in first), default=end)
    needs_impact = duration >= IMPACT_MIN_DURATION_S
    felt = (not needs_impact) or max_lag >= IMPACT_SHARE * duration
    return {
        "window_s": round(duration, 3),
        "events_in_window": len(in_window),
        "max_lag_in_window_s": round(max_lag, 3),
        "impact_observed": felt,
        "recovery_s": None if pending else round(max(0.0, caught_up - end), 3),
    }


def assess_faults(faults: Sequence[dict[str, Any]], published: Sequence[dict[str, Any]],
                  deliveries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    first = first_processing(deliveries)
    return [{**f, **assess_fault(f, published, first)} for f in faults]
