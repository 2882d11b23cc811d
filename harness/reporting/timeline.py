"""The series a scenario's timeline chart is drawn from, read from its stored files.

Everything here is pure except `read_timeline`, which only reads a scenario folder:
history.jsonl (the workload's acknowledged writes, the faults as injected) and
deliveries.json (each delivery the consumer committed, with the source's commit time), plus
the run's own assessment of each fault (run.json: window, impact, `recovery_s`). So a
stored run draws the same chart again, and nothing here needs a running system.

Times are seconds since the load started (the first write the workload sent), so the
chart reads like the scenario's fault schedule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HISTORY = "history.jsonl"
DELIVERIES = "deliveries.json"

# A chart has a few hundred points across, whatever the run's length.
_MIN_BIN_S = 0.25
_MAX_BINS = 300

Point = tuple[float, float]


@dataclass(frozen=True)
class FaultWindow:
    label: str  # the fault's name, e.g. "pause:broker" or "latency:relay_broker:downstream"
    target: str
    start_s: float  # injected, seconds since the load started
    end_s: float  # healed
    # When every event written before the heal had been applied (heal + recovery_s);
    # None: the run did not measure it (e.g. it stopped before judging).
    recovered_s: float | None
    impact: str  # the run's own reading of what the fault did to replication


@dataclass(frozen=True)
class Timeline:
    bin_s: float
    lag: list[Point]  # worst lag (s) of the events written in each bin, by write time
    writes: list[Point]  # writes the publisher acknowledged, per second
    applied: list[Point]  # events the consumer processed for the first time, per second
    faults: list[FaultWindow]


class TimelineUnavailable(Exception):
    """The scenario's files hold no timeline: the message says which file and why."""


def bin_width(span_s: float) -> float:
    """Bins of 0.25 s, wider for long runs so a chart stays at most ~300 points across."""
    return max(_MIN_BIN_S, math.ceil(span_s / _MAX_BINS * 4) / 4)


def first_processings(deliveries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each event's first delivery (as harness.metrics counts lag): a redelivery or a
    duplicate says nothing about how long replication took."""
    seen: set[str] = set()
    first = []
    for delivery in deliveries:
        event_id = delivery.get("event_id")
        if event_id and event_id not in seen and _is_time(delivery.get("occurred_at")) \
                and _is_time(delivery.get("committed_at")):
            seen.add(event_id)
            first.append(delivery)
    return first


def lag_series(firsts: Sequence[dict[str, Any]], origin: float, bin_s: float) -> list[Point]:
    """(bin start, worst lag in s) for the events written in each bin, lag being commit in
    the replica minus commit at the source. Binned by write time, as the run's fault
    assessment reads lag: a fault shows as the events written during it waiting."""
    worst: dict[int, float] = {}
    for delivery in firsts:
        index = math.floor((delivery["occurred_at"] - origin) / bin_s)
        lag = max(0.0, delivery["committed_at"] - delivery["occurred_at"])
        worst[index] = max(worst.get(index, 0.0), lag)
    return [(index * bin_s, worst[index]) for index in sorted(worst)]


def rate_series(times: Iterable[float], origin: float, bin_s: float) -> list[Point]:
    """(bin start, count / bin width) from the first to the last bin with a count, empty
    bins included: a stall shows as zero, not as a line drawn across it."""
    counts: dict[int, int] = {}
    for t in times:
        index = math.floor((t - origin) / bin_s)
        counts[index] = counts.get(index, 0) + 1
    if not counts:
        return []
    return [(index * bin_s, counts.get(index, 0) / bin_s)
            for index in range(min(counts), max(counts) + 1)]


def fault_windows(assessed: Sequence[dict[str, Any]], recorded: Sequence[dict[str, Any]],
                  origin: float) -> list[FaultWindow]:
    """The run's assessed faults (run.json, with recovery and impact); when it has none
    (it stopped before judging) the fault records of the history, without recovery."""
    windows = []
    for fault in assessed or recorded:
        if not _is_time(fault.get("at")):
            continue
        start = float(fault["at"])
        end = float(fault["healed_at"]) if _is_time(fault.get("healed_at")) else start
        healed = max(end, start) - origin
        recovery = _time(fault.get("recovery_s")) if assessed else None
        windows.append(FaultWindow(
            label=str(fault.get("fault", "fault")), target=str(fault.get("target", "")),
            start_s=start - origin, end_s=healed,
            recovered_s=None if recovery is None else healed + recovery,
            impact=str(fault.get("impact", ""))))
    return sorted(windows, key=lambda w: w.start_s)


def build_timeline(history: Sequence[dict[str, Any]], deliveries: Sequence[dict[str, Any]],
                   assessed_faults: Sequence[dict[str, Any]]) -> Timeline:
    """The chart's series from a scenario's history records, its consumer's deliveries and
    the run's assessed faults; TimelineUnavailable when there is nothing to draw."""
    writes = [float(r["t"]) for r in history
              if r.get("kind") == "op" and r.get("ok") and _is_time(r.get("t"))]
    firsts = first_processings(deliveries)
    if not writes and not firsts:
        raise TimelineUnavailable("no acknowledged write and no delivery was recorded")
    origin = min(writes) if writes else min(d["occurred_at"] for d in firsts)
    last = max([*writes, *(d["committed_at"] for d in firsts)])
    bin_s = bin_width(last - origin)
    return Timeline(
        bin_s=bin_s,
        lag=lag_series(firsts, origin, bin_s),
        writes=rate_series(writes, origin, bin_s),
        applied=rate_series((d["committed_at"] for d in firsts), origin, bin_s),
        faults=fault_windows(assessed_faults,
                             [r for r in history if r.get("kind") == "fault"], origin))


def read_timeline(folder: Path, assessed_faults: Sequence[dict[str, Any]]) -> Timeline:
    """`build_timeline` from a scenario folder's files; anything missing or unreadable is a
    TimelineUnavailable naming the file, so a page shows why instead of failing."""
    history = _read_history(folder / HISTORY)
    deliveries_path = folder / DELIVERIES
    deliveries: Any = []
    if deliveries_path.exists():  # absent when the scenario stopped before collecting
        deliveries = _read_json(deliveries_path)
        if not isinstance(deliveries, list) or not all(isinstance(d, dict)
                                                       for d in deliveries):
            raise TimelineUnavailable(f"{DELIVERIES} is not a list of deliveries")
    return build_timeline(history, deliveries, assessed_faults)


def _read_history(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise TimelineUnavailable(f"{path.name} is missing") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TimelineUnavailable(f"{path.name} cannot be read ({exc})") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise TimelineUnavailable(f"{path.name} line {number} is not JSON") from exc
        if not isinstance(record, dict):
            raise TimelineUnavailable(f"{path.name} line {number} is not an object")
        records.append(record)
    return records


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TimelineUnavailable(f"{path.name} cannot be read as JSON ({exc})") from exc


def _is_time(value: Any) -> bool:
    return _time(value) is not None


def _time(value: Any) -> float | None:
    """A finite number of seconds, or None for anything else a stored file may hold."""
    if isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value):
        return float(value)
    return None
