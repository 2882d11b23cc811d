"""What each fault did to replication, from recorded deliveries (pure functions).

- impact (lag): a fault that should slow replication (`expected_lag_s` in its record, set
  by the runner; None when lag cannot show it) counts as felt only when the lag sustained
  by its window's events clearly exceeds what was there before it:

      sustained(window) >= sustained(baseline) + expected_lag_s

  "Sustained" is the lag reached by at least SUSTAINED_SHARE of the events written in a
  window (not the worst one), so an unrelated spike that delays a handful of events does
  not count. The baseline window is the BASELINE_MIN_S (or the fault's duration, if
  longer) before the fault, starting no earlier than replication had recovered from any
  earlier fault (its heal plus its recovery_s): lag an earlier fault left behind belongs
  to that fault. Baseline lags count only up to the fault's start: the fault also holds
  up events written just before it, and that part of their lag is its own. A fault that
  began before replication had recovered from an earlier one is compared with the whole
  baseline window, recovery tail included; if it does not stand out even so, lag cannot
  tell the two apart, and it is judged by its own evidence only (`impact_inseparable`),
  which fault_was_active reports.
- impact (log): a fault whose effect only the consumer can see declares it (`log_effect`
  in its record, from the fault's details(): `outcome`, `after`, `at_least`, `since`, and
  optionally `event_ids`): at least `at_least` deliveries with that outcome received after
  `after` (e.g. the duplicates deduplicated, a stale skip after held events were released
  out of order).
- recovery_s: from the heal until every event written before the heal was processed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.checkers.base import CheckResult
from harness.contract.outcomes import DEAD_LETTERED

# Share of a window's events that must reach a lag for it to count as sustained.
SUSTAINED_SHARE = 0.25
# Shortest baseline window before a fault (seconds); longer faults get one as long.
BASELINE_MIN_S = 2.0

First = dict[str, dict[str, Any]]


def first_processing(deliveries: Sequence[dict[str, Any]]) -> First:
    first: First = {}
    for d in deliveries:
        if d.get("event_id") and d["event_id"] not in first and d["outcome"] != DEAD_LETTERED:
            first[d["event_id"]] = d
    return first


def lag_reached_by(lags: Sequence[float], share: float = SUSTAINED_SHARE) -> float:
    """The highest lag that at least `share` of the events reached (0 without events)."""
    if not lags:
        return 0.0
    ranked = sorted(lags, reverse=True)
    return ranked[max(0, math.ceil(share * len(ranked)) - 1)]


def _window_lags(published: Sequence[dict[str, Any]], first: First, lo: float, hi: float
                 ) -> tuple[int, list[float]]:
    """(events written in [lo, hi], lags of those that were processed)."""
    written = [e for e in published if lo <= e["occurred_at"] <= hi]
    return len(written), [first[e["event_id"]]["committed_at"] - e["occurred_at"]
                          for e in written if e["event_id"] in first]


def _lags_before(published: Sequence[dict[str, Any]], first: First, lo: float, until: float
                 ) -> tuple[int, list[float]]:
    """(events written in [lo, until), the lag each had accumulated by `until`): a fault
    beginning at `until` also holds up events written just before it, and that part of
    their lag is its doing, not the baseline's."""
    written = [e for e in published if lo <= e["occurred_at"] < until]
    return len(written), [min(first[e["event_id"]]["committed_at"] if e["event_id"] in first
                              else until, until) - e["occurred_at"] for e in written]


def recovery_s(fault: dict[str, Any], published: Sequence[dict[str, Any]],
               first: First) -> float | None:
    """Seconds from the heal until every event written before it was processed (None:
    some never were)."""
    end = float(fault["healed_at"])
    before_heal = [e for e in published if e["occurred_at"] <= end]
    if any(e["event_id"] not in first for e in before_heal):
        return None
    caught_up = max((float(first[e["event_id"]]["committed_at"]) for e in before_heal),
                    default=end)
    return round(max(0.0, caught_up - end), 3)


def _lag_impact(fault: dict[str, Any], published: Sequence[dict[str, Any]], first: First,
                earlier: tuple[str, float] | None) -> dict[str, Any]:
    """`earlier`: the earlier fault replication recovered from last, and when it had."""
    start, end = fault["at"], fault["healed_at"]
    duration = end - start
    in_window, lags = _window_lags(published, first, start, end)
    baseline_s = max(BASELINE_MIN_S, duration)
    clean_from = start - baseline_s
    overlapping = earlier is not None and earlier[1] >= start
    if earlier is not None and not overlapping:
        clean_from = max(clean_from, earlier[1])
    before, baseline_lags = _lags_before(published, first, clean_from, start)
    sustained = lag_reached_by(lags)
    baseline = lag_reached_by(baseline_lags)
    expected = fault.get("expected_lag_s")
    record: dict[str, Any] = {
        "window_s": round(duration, 3),
        "expected_lag_s": expected,
        "events_in_window": in_window,
        "max_lag_in_window_s": round(max(lags, default=0.0), 3),
        "sustained_lag_s": round(sustained, 3),
        "baseline_window_s": round(start - clean_from, 3),
        "events_in_baseline": before,
        "baseline_lag_s": round(baseline, 3),
    }
    if expected is None:
        return {**record, "impact_observed": True,
                "impact": "judged by its own evidence: replication lag cannot show it"}
    felt = sustained >= baseline + expected
    seen = (f"lag reached by {SUSTAINED_SHARE:.0%} of the {in_window} events written during "
            f"its {duration:.1f}s: {sustained:.3f}s, against {baseline:.3f}s over the "
            f"{before} events of the {start - clean_from:.1f}s before it")
    if overlapping and earlier is not None:
        seen += f" (replication was still recovering from {earlier[0]})"
        if not felt:
            return {**record, "impact_observed": True, "impact_inseparable": True,
                    "impact": f"{seen}; it does not add the {expected:.3f}s expected on top, "
                              "so lag cannot tell the two faults apart: judged by its own "
                              "evidence"}
    return {**record, "impact_observed": felt,
            "impact": f"{seen}; it had to add {expected:.3f}s"}


def _log_impact(fault: dict[str, Any], deliveries: Sequence[dict[str, Any]]
                ) -> tuple[bool, str] | None:
    """Whether the consumer's log shows the effect the fault declared (None: it declared
    none)."""
    want = fault.get("log_effect")
    if not want:
        return None
    ids = set(want.get("event_ids") or ())
    seen = sum(1 for d in deliveries
               if d["outcome"] == want["outcome"]
               and d.get("received_at", d["committed_at"]) >= want["after"]
               and (not ids or d.get("event_id") in ids))
    scope = f" of its {len(ids)} events" if ids else ""
    return (seen >= want["at_least"],
            f"the consumer's log shows {seen} {want['outcome']} deliveries{scope} after "
            f"{want['since']}; at least {want['at_least']} expected")


def assess_fault(fault: dict[str, Any], published: Sequence[dict[str, Any]], first: First,
                 deliveries: Sequence[dict[str, Any]] = (),
                 earlier: tuple[str, float] | None = None) -> dict[str, Any]:
    """Impact and recovery of one fault; `earlier` as in _lag_impact."""
    assessed = _lag_impact(fault, published, first, earlier)
    log = _log_impact(fault, deliveries)
    if log is not None:
        felt, seen = log
        lag_text = "" if fault.get("expected_lag_s") is None else f"; {assessed['impact']}"
        assessed = {**assessed, "impact_observed": felt and assessed["impact_observed"],
                    "impact": seen + lag_text}
    return {**assessed, "recovery_s": recovery_s(fault, published, first)}


def assess_faults(faults: Sequence[dict[str, Any]], published: Sequence[dict[str, Any]],
                  deliveries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each fault assessed against the replication of the consumer whose log is given."""
    first = first_processing(deliveries)
    recovered: dict[int, tuple[str, float]] = {}
    for index, fault in enumerate(faults):
        took = recovery_s(fault, published, first)
        recovered[index] = (fault["fault"],
                            fault["healed_at"] + took if took is not None else math.inf)
    assessed = []
    for index, fault in enumerate(faults):
        before = [recovered[i] for i, other in enumerate(faults)
                  if i != index and other["at"] < fault["at"]]
        earlier = max(before, key=lambda item: item[1], default=None)
        assessed.append({**fault, **assess_fault(fault, published, first, deliveries,
                                                 earlier)})
    return assessed


def unaffected(published: Sequence[dict[str, Any]], deliveries: Sequence[dict[str, Any]],
               windows: Sequence[tuple[float, float, float]]) -> CheckResult:
    """A consumer kept replicating normally while faults hit another one. `windows`: each
    fault's (injected at, healed at, lag it had to add to count as felt).

    Judged as a fault's impact is (see the module docstring), on this consumer's
    deliveries: the lag sustained by the events written during each fault must not have
    grown by what would count that fault as felt here, over this consumer's own lag just
    before it (that of the events it processed in the baseline window before the fault:
    done before the fault began, their lag owes nothing to it). Relative to what the run
    measured, so a broker whose ordinary lag is high (Tansu on S3) is judged as fairly as a
    fast one; and no event written during a fault may be missing."""
    first = first_processing(deliveries)
    written_at = {e["event_id"]: float(e["occurred_at"]) for e in published}
    seen: list[str] = []
    for start, end, expected in windows:
        in_window, lags = _window_lags(published, first, start, end)
        missing = in_window - len(lags)
        baseline_from = start - max(BASELINE_MIN_S, end - start)
        baseline_lags = [float(d["committed_at"]) - written_at[event_id]
                         for event_id, d in first.items()
                         if event_id in written_at
                         and baseline_from <= float(d["committed_at"]) < start]
        before = len(baseline_lags)
        sustained, baseline = lag_reached_by(lags), lag_reached_by(baseline_lags)
        if not in_window:
            return CheckResult("unaffected", False,
                               "no event was written while the other consumer was down: "
                               "nothing shows this consumer was unaffected")
        what = (f"this consumer's lag reached by {SUSTAINED_SHARE:.0%} of the {in_window} "
                f"events written during the other consumer's fault ({end - start:.1f}s): "
                f"{sustained:.3f}s, against {baseline:.3f}s over the {before} events it "
                f"processed in the {start - baseline_from:.1f}s before it")
        if missing or sustained >= baseline + expected:
            return CheckResult("unaffected", False,
                               f"affected by the other consumer's fault: {missing} of "
                               f"{in_window} events missing; {what}, {expected:.3f}s more "
                               "counts that fault as felt here")
        seen.append(what)
    return CheckResult("unaffected", True, "; ".join(seen))
