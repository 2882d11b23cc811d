"""Replication metrics computed from recorded deliveries, and the load's own figures
computed from the workload's op records (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class LoadRates:
    """The rate a workload promised and the one the publisher took, read back from its op
    records (harness/workload/driver.py): write i is due at i / rate, so the offered rate
    is any later write's index over its due time; the achieved rate is the acknowledged
    writes over the load's window, from the first write's due time to the last answer."""

    offered_per_s: float
    achieved_per_s: float
    acknowledged: int
    window_s: float
    behind_schedule: int  # writes whose due time found the cap on writes in flight full
    max_send_delay_ms: float  # the latest any write went out after its due time

    @property
    def share(self) -> float:
        return self.achieved_per_s / self.offered_per_s


def load_rates(ops: Sequence[dict[str, Any]]) -> LoadRates | None:
    """None when the records carry no schedule (a run stored before the driver recorded
    one) or fewer than two writes were sent (no rate to read)."""
    timed = [op for op in ops if "due_s" in op]
    last = max(timed, key=lambda op: int(op["index"]), default=None)
    if last is None or int(last["index"]) == 0 or float(last["due_s"]) <= 0:
        return None
    window_s = max(float(op["due_s"]) + float(op["latency_ms"]) / 1000 for op in timed)
    acknowledged = sum(1 for op in timed if op.get("ok"))
    return LoadRates(
        offered_per_s=int(last["index"]) / float(last["due_s"]),
        achieved_per_s=acknowledged / window_s, acknowledged=acknowledged,
        window_s=window_s, behind_schedule=sum(1 for op in timed if op.get("cap_full")),
        max_send_delay_ms=max(float(op.get("sent_late_ms", 0.0)) for op in timed))


def load_metrics(ops: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """run.json's figures of the load: offered and achieved write rates, the acknowledged
    writes' latency from their intended send time, and how far the schedule slipped."""
    rates = load_rates(ops)
    if rates is None:
        return {}
    latencies = sorted(float(op["latency_ms"]) for op in ops if op.get("ok") and "due_s" in op)
    return {
        "offered_rate_per_s": round(rates.offered_per_s, 2),
        "achieved_rate_per_s": round(rates.achieved_per_s, 2),
        "load_window_s": round(rates.window_s, 3),
        "write_latency_ms": {"p50": round(percentile(latencies, 0.50), 2),
                             "p99": round(percentile(latencies, 0.99), 2),
                             "max": round(latencies[-1], 2) if latencies else 0.0},
        "writes_behind_schedule": rates.behind_schedule,
        "max_send_delay_ms": round(rates.max_send_delay_ms, 2),
    }
