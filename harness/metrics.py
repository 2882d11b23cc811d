"""Replication metrics computed from recorded deliveries (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def replication_metrics(deliveries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Lag = commit in the replica minus commit at the source, for each event's first
    processing; throughput = events processed per second over the replication window."""
    first: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        if d.get("event_id") and d["event_id"] not in first:
            first[d["event_id"]] = d
    lags = sorted(max(0.0, d["committed_at"] - d["occurred_at"]) * 1000 for d in first.values())
    if first:
        window = max(d["committed_at"] for d in first.values()) - \
            min(d["occurred_at"] for d in first.values())
    else:
        window = 0.0
    outcomes: dict[str, int] = {}
    for d in deliveries:
        outcomes[d["outcome"]] = outcomes.get(d["outcome"], 0) + 1
    return {
        "outcomes": dict(sorted(outcomes.items())),
        "events_processed": len(first),
        "deliveries": len(deliveries),
        "redelivered": sum(1 for d in deliveries if d.get("redelivered")),
        "throughput_eps": round(len(first) / window, 1) if window > 0 else 0.0,
        "lag_ms": {"p50": round(percentile(lags, 0.50), 2),
                   "p95": round(percentile(lags, 0.95), 2),
                   "p99": round(percentile(lags, 0.99), 2),
                   "max": round(lags[-1], 2) if lags else 0.0},
    }
