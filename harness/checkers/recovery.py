"""What each fault did to replication, from recorded deliveries (pure functions).

- impact: the worst lag of events written while the fault was active, against the lag
  the fault should cause (`expected_lag_s` in its record, set by the runner; None when
  the fault is judged by other evidence). A fault on the replication path that leaves lag
  untouched did not really happen.
- recovery_s: from the heal until every event written before the heal was processed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.checkers.base import CheckResult


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
    expected = fault.get("expected_lag_s")
    felt = expected is None or max_lag >= expected
    return {
        "window_s": round(duration, 3),
        "expected_lag_s": expected,
        "events_in_window": len(in_window),
        "max_lag_in_window_s": round(max_lag, 3),
        "impact_observed": felt,
        "recovery_s": None if pending else round(max(0.0, caught_up - end), 3),
    }


def assess_faults(faults: Sequence[dict[str, Any]], published: Sequence[dict[str, Any]],
                  deliveries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    first = first_processing(deliveries)
    return [{**f, **assess_fault(f, published, first)} for f in faults]


def unaffected(published: Sequence[dict[str, Any]], deliveries: Sequence[dict[str, Any]],
               windows: Sequence[tuple[float, float]], max_lag_s: float) -> CheckResult:
    """A consumer kept replicating normally while faults hit another one."""
    first = first_processing(deliveries)
    during = [e for e in published if any(lo <= e["occurred_at"] <= hi for lo, hi in windows)]
    lags = [first[e["event_id"]]["committed_at"] - e["occurred_at"]
            for e in during if e["event_id"] in first]
    missing = sum(1 for e in during if e["event_id"] not in first)
    worst = max(lags, default=0.0)
    if not during:
        return CheckResult("unaffected", False,
                           "no event was written while the other consumer was down: "
                           "nothing shows this consumer was unaffected")
    if missing or worst > max_lag_s:
        return CheckResult("unaffected", False,
                           f"affected by the other consumer's fault: {missing} of "
                           f"{len(during)} events missing, worst lag {worst:.3f}s "
                           f"(allowed {max_lag_s}s)")
    return CheckResult("unaffected", True,
                       f"{len(during)} events written during the other consumer's faults, "
                       f"worst lag {worst * 1000:.0f} ms")
