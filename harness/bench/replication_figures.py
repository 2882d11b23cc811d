"""The figures of `harness bench replication`, from the scenarios' results and the raw
parts' measures: pure functions and plain data (the bench measures, this file computes).

Each figure is the pipeline's value beside a raw one from the same run, with its ratio and
the design's target where it sets one:
- lag p99 at 200 writes/s <= 3x the raw broker's end-to-end p99 at 200 messages/s;
- the write rate the publisher commits (offered far more than it can take) >= 0.5 of the
  raw database's single-row transaction rate;
- drain: a backlog of outbox rows over the time from the heal until all are applied,
  >= 0.5 of the raw broker's publish+consume rate;
- recovery after a 10 s broker outage (kill, stop, pause) <= 5 s + backlog / drain rate.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.bench import figures
from harness.bench.raw_broker import RawBroker
from harness.bench.raw_db import DbRate
from harness.bench.replication_plan import BROKER_FAULTS, SATURATION
from harness.checkers.recovery import first_processing
from harness.results import ScenarioResult

LAG_TARGET = "<= 3"
LAG_TARGET_RATE = 200.0
WRITE_TARGET = ">= 0.5"
DRAIN_TARGET = ">= 0.5"
RECOVERY_TARGET = "<= 1"  # recovery / (5 s + backlog / drain rate)
RECOVERY_ALLOWANCE_S = 5.0
# A rung sustains its rate when the publisher achieved this share of it.
SUSTAIN_SHARE = 0.9


@dataclass(frozen=True)
class Rung:
    kind: str  # replication_plan.RUNG or SATURATION
    offered: float  # writes per second asked for
    achieved: float  # writes acknowledged / load seconds
    writes_ok: int
    load_s: float
    lag: figures.Percentiles
    verdict: str

    def sustains(self, bound_ms: float) -> bool:
        return (self.verdict == "pass" and self.achieved >= SUSTAIN_SHARE * self.offered
                and self.lag.p99 <= bound_ms)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_window(ops: Sequence[Mapping[str, Any]]) -> tuple[int, float]:
    """(writes acknowledged, seconds from the first write's sending to the last answer),
    from the workload's op records (`t`: when answered; `latency_ms`: how long it took).
    Read from the writes themselves: the run's load_s also holds the runner's wait for its
    next progress tick after the last answer."""
    if not ops:
        return 0, 0.0
    began = min(float(op["t"]) - float(op.get("latency_ms", 0.0)) / 1000 for op in ops)
    ended = max(float(op["t"]) for op in ops)
    return sum(1 for op in ops if op.get("ok")), round(ended - began, 3)


def rung_from(kind: str, offered: float, result: ScenarioResult,
              ops: Sequence[Mapping[str, Any]]) -> Rung:
    """`ops`: the scenario's op records (none when it stopped before collecting them)."""
    metrics = result.metrics
    lag = metrics.get("lag_ms", {})
    writes_ok, load_s = load_window(ops)
    return Rung(kind, offered, round(writes_ok / load_s, 1) if load_s > 0 else 0.0,
                writes_ok, load_s,
                figures.Percentiles(int(metrics.get("events_processed", 0)),
                                    *(float(lag.get(q, 0.0)) for q in ("p50", "p95", "p99"))),
                result.verdict)


@dataclass(frozen=True)
class AfterHeal:
    """One fault's heal, as the scenario's records show it."""

    backlog: int  # events written before the heal and not applied by then
    recovery_s: float | None  # heal -> every earlier event applied (None: some never were)
    first_apply_s: float | None  # heal -> the first event applied after it


def after_heal(fault: Mapping[str, Any], published: Sequence[dict[str, Any]],
               deliveries: Sequence[dict[str, Any]]) -> AfterHeal:
    """`fault`: the scenario result's record (its `recovery_s` is the runner's figure);
    `published`/`deliveries`: the scenario's collected events and first consumer's log."""
    healed = float(fault["healed_at"])
    applied_at = {event_id: float(d["committed_at"])
                  for event_id, d in first_processing(deliveries).items()}
    backlog = sum(1 for e in published if float(e["occurred_at"]) <= healed
                  and applied_at.get(e["event_id"], float("inf")) > healed)
    later = [t for t in applied_at.values() if t > healed]
    recovery = fault.get("recovery_s")
    return AfterHeal(backlog, None if recovery is None else float(recovery),
                     round(min(later) - healed, 3) if later else None)


@dataclass(frozen=True)
class Outage:
    """One faulted scenario: `heal` is None when it has no figure (not applicable on this
    broker, or it stopped before the heal)."""

    fault: str
    repeat: int
    verdict: str
    heal: AfterHeal | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def drain_rate(drain: Outage) -> float | None:
    """Rows per second from the heal until the backlog was all applied."""
    heal = drain.heal
    if heal is None or heal.recovery_s is None or heal.backlog == 0:
        return None
    return round(heal.backlog / max(heal.recovery_s, 0.001), 1)


@dataclass(frozen=True)
class RecoverySummary:
    fault: str
    recovery_s: tuple[float, ...]  # of the repeats that have a figure
    repeats: int
    backlog: float  # median over those repeats, events

    @property
    def median_s(self) -> float | None:
        return round(statistics.median(self.recovery_s), 3) if self.recovery_s else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "median_s": self.median_s,
                "min_s": min(self.recovery_s, default=None),
                "max_s": max(self.recovery_s, default=None)}


def summarise(outages: Sequence[Outage]) -> list[RecoverySummary]:
    """Per fault type, in the order first seen."""
    summaries = []
    for fault in dict.fromkeys(o.fault for o in outages):
        mine = [o for o in outages if o.fault == fault]
        heals = [o.heal for o in mine if o.heal is not None and o.heal.recovery_s is not None]
        summaries.append(RecoverySummary(
            fault, tuple(h.recovery_s for h in heals if h.recovery_s is not None), len(mine),
            statistics.median(h.backlog for h in heals) if heals else 0.0))
    return summaries


@dataclass(frozen=True)
class Section:
    title: str
    value_label: str
    raw_label: str
    comparisons: tuple[figures.Comparison, ...]
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return [self.title,
                *(f"  {figures.format_comparison(c, self.value_label, self.raw_label)}"
                  for c in self.comparisons),
                *(f"  {note}" for note in self.notes)]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "value_label": self.value_label,
                "raw_label": self.raw_label, "notes": list(self.notes),
                "comparisons": [c.to_dict() for c in self.comparisons]}


def lag_section(rungs: Sequence[Rung], raw: RawBroker) -> Section:
    comparisons, notes = [], []
    for item in rungs:
        seen = raw.latency_at(item.offered)
        if item.kind == SATURATION or seen is None:
            continue
        for name in ("p50", "p95", "p99"):
            target = LAG_TARGET if name == "p99" and item.offered == LAG_TARGET_RATE else ""
            comparisons.append(figures.compare(
                f"lag {name} at {item.offered:g}/s", "ms", getattr(item.lag, name),
                getattr(seen.latency, name), target))
    if raw.latency_at(LAG_TARGET_RATE) is None:
        notes.append(f"no rung at {LAG_TARGET_RATE:g} writes/s: the lag target "
                     f"({LAG_TARGET} of raw p99 there) is not shown")
    return Section("Replication lag vs the raw broker's end to end at the same rate",
                   "pipeline", "raw broker", tuple(comparisons), tuple(notes))


def write_section(rungs: Sequence[Rung], raw_db: DbRate, bound_ms: float) -> Section:
    comparisons = [figures.compare(
        f"writes committed at {item.offered:g}/s offered", "writes/s", item.achieved,
        raw_db.per_s, WRITE_TARGET if item.kind == SATURATION else "") for item in rungs]
    sustained = [item.offered for item in rungs if item.sustains(bound_ms)]
    comparisons.append(figures.compare(
        f"highest rate sustained with lag p99 <= {bound_ms:g} ms", "writes/s",
        max(sustained, default=0.0), raw_db.per_s))
    notes = (f"sustained: the scenario passed, achieved >= {SUSTAIN_SHARE:.0%} of offered, "
             f"lag p99 <= {bound_ms:g} ms" + ("" if sustained else "; no rung did"),)
    return Section(f"Publisher write rate vs raw {raw_db.db} single-row insert transactions",
                   "publisher", f"raw {raw_db.db}", tuple(comparisons), notes)


def drain_section(drain: Outage, raw: RawBroker) -> Section:
    rate = drain_rate(drain)
    heal = drain.heal
    if heal is None or rate is None:
        return Section("Drain of the outbox backlog vs the raw broker's publish+consume",
                       "pipeline", "raw broker", (),
                       (f"no drain figure: {drain.fault} scenario verdict {drain.verdict}"
                        + ("" if heal is None else f", backlog {heal.backlog}, "
                           f"recovery {heal.recovery_s}"),))
    # How much of the drain time went to reconnecting, and what the rest ran at.
    took_s = heal.recovery_s or 0.0
    reconnect = "" if heal.first_apply_s is None else (
        f"; the first row was applied {heal.first_apply_s:.2f} s after the heal, the rest at "
        f"{heal.backlog / max(took_s - heal.first_apply_s, 0.001):.0f} rows/s")
    return Section(
        "Drain of the outbox backlog vs the raw broker's publish+consume", "pipeline",
        "raw broker",
        (figures.compare("drain", "msg/s", rate, raw.publish_consume_per_s, DRAIN_TARGET),),
        (f"{heal.backlog} rows applied {took_s:.2f} s after the heal{reconnect}",))


def recovery_section(summaries: Sequence[RecoverySummary], drain_per_s: float | None,
                     raw: RawBroker) -> Section:
    comparisons, notes = [], []
    for item in summaries:
        if item.median_s is None:
            notes.append(f"{item.fault}: no recovery figure in {item.repeats} repeat(s)")
            continue
        expected = (RECOVERY_ALLOWANCE_S + item.backlog / drain_per_s) if drain_per_s else 0.0
        comparisons.append(figures.compare(
            f"{item.fault} recovery, median of {len(item.recovery_s)}", "s", item.median_s,
            expected, RECOVERY_TARGET if item.fault in BROKER_FAULTS else ""))
        drain_s = f"{item.backlog / drain_per_s:.2f} s" if drain_per_s else "unknown"
        notes.append(f"{item.fault}: spread {min(item.recovery_s):.2f}-"
                     f"{max(item.recovery_s):.2f} s over {len(item.recovery_s)} of "
                     f"{item.repeats} repeat(s); backlog at heal {item.backlog:.0f} events; "
                     f"backlog / drain rate {drain_s}; backlog / raw broker rate "
                     f"{item.backlog / raw.publish_consume_per_s:.2f} s")
    return Section("Recovery (heal -> every earlier event applied) vs 5 s + backlog / drain "
                   "rate", "pipeline", "5 s + backlog/drain", tuple(comparisons), tuple(notes))
