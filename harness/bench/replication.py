"""`harness bench replication`: the pipeline's replication figures next to the raw parts',
in one run on one machine.

1. Raw parts: a broker started by the run's plugin (as every scenario starts it) measures
   its publish+consume rate and its end-to-end latency at each rate of the ladder
   (harness/bench/raw_broker.py), and is stopped; the database the services would use
   measures its single-row write-transaction rate (harness/bench/raw_db.py).
2. The pipeline: one run of scenarios built for the bench (harness/bench/
   replication_plan.py): a steady-state rung per offered rate and a saturation rung (lag
   and the write rate committed), a drain (the relay's link down while rows pile up in the
   outbox, then healed), and each fault type's 10 s outage, repeated (recovery).
3. Figures (harness/bench/replication_figures.py): pipeline / raw / ratio with the design's
   target, printed and saved as reports/bench-<time>/bench.json; the scenarios' own report
   (run.json, index.html) is in its pipeline/ folder.

Exit 1 when a scenario did not pass or the raw consumer missed a message: those figures
would measure something else. Ctrl-C stops everything started (the session's handling).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.bench import figures
from harness.bench.raw_broker import RawBroker, measure_raw_broker
from harness.bench.raw_db import DbRate, raw_write_rate
from harness.bench.replication_figures import (
    Outage,
    RecoverySummary,
    Rung,
    Section,
    after_heal,
    drain_rate,
    drain_section,
    lag_section,
    recovery_section,
    rung_from,
    summarise,
    write_section,
)
from harness.bench.replication_plan import (
    DRAIN,
    RECOVERY,
    BenchPlan,
    Planned,
    build,
    parse_rates,
    plan_for,
)
from harness.collected import Collected
from harness.errors import ConfigError
from harness.results import ScenarioResult
from harness.session import run_scenarios
from harness.settings import RunSettings

# Enough to take a second or more on SQLite (tens of thousands a second on an idle disk).
RAW_DB_TRANSACTIONS = 20_000
QUICK_MESSAGES = 5000
RAW_ROUNDS = 3
QUICK_RAW_DB_TRANSACTIONS = 10_000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ReplicationBench:
    broker: str
    db: str
    plan: BenchPlan
    lag_bound_ms: float
    raw_broker: RawBroker
    raw_db: DbRate
    rungs: tuple[Rung, ...]
    drain: Outage
    outages: tuple[Outage, ...]
    recovery: tuple[RecoverySummary, ...]
    sections: tuple[Section, ...]
    verdicts: dict[str, str]  # scenario name -> verdict
    pipeline_report: str

    @property
    def all_passed(self) -> bool:
        return all(v in ("pass", "not_applicable") for v in self.verdicts.values())

    def to_dict(self) -> dict[str, Any]:
        return {"bench": "replication", "broker": self.broker, "db": self.db,
                "plan": asdict(self.plan), "lag_bound_ms": self.lag_bound_ms,
                "raw": {"broker": self.raw_broker.to_dict(), "db": self.raw_db.to_dict()},
                "rungs": [r.to_dict() for r in self.rungs],
                "drain": {**self.drain.to_dict(), "per_s": drain_rate(self.drain)},
                "outages": [o.to_dict() for o in self.outages],
                "recovery": [s.to_dict() for s in self.recovery],
                "sections": [s.to_dict() for s in self.sections],
                "verdicts": self.verdicts, "pipeline_report": self.pipeline_report}


def collected_of(result: ScenarioResult) -> Collected | None:
    """What the scenario collected; None when it stopped before collecting."""
    if not result.report_dir:
        return None
    try:
        return Collected.load(Path(result.report_dir))
    except ConfigError:
        return None


def outage_from(planned: Planned, result: ScenarioResult) -> Outage:
    """The fault's heal as its scenario's collected records show it (None: no record)."""
    collected = collected_of(result)
    if not result.faults or collected is None:
        return Outage(planned.fault, planned.repeat, result.verdict, None)
    return Outage(planned.fault, planned.repeat, result.verdict,
                  after_heal(result.faults[0], collected.published, collected.deliveries))


def _ops(result: ScenarioResult) -> list[dict[str, Any]]:
    collected = collected_of(result)
    return collected.ops if collected is not None else []


class _Printer:
    """Progress of the scenarios: bench time, which of how many, the runner's message."""

    def __init__(self, names: Sequence[str], progress: Progress, began: float) -> None:
        self._index = {name: i for i, name in enumerate(names, 1)}
        self._progress = progress
        self._began = began

    def __call__(self, name: str, message: str) -> None:
        if message.startswith("@verdict"):
            message = f"verdict: {message.split()[-1]}"
        self._progress(f"[{time.monotonic() - self._began:5.0f}s "
                       f"{self._index[name]}/{len(self._index)} {name}] {message}")


def run_replication_bench(out_dir: Path, broker: str, db: str, plan: BenchPlan, seed: int,
                          lag_bound_ms: float, messages: int, raw_rounds: int,
                          raw_db_count: int, progress: Progress = print) -> ReplicationBench:
    began = time.monotonic()
    raw = measure_raw_broker(broker, out_dir / "raw", messages, raw_rounds, plan.rates,
                             plan.rung_s, progress)
    progress(f"raw database: {raw_db_count} single-row insert transactions on {db}")
    raw_db = raw_write_rate(db, out_dir / "raw", raw_db_count)
    progress(f"raw database: {raw_db.per_s:.0f} transactions/s")
    planned = build(plan)
    progress(f"pipeline: {len(planned)} scenarios on {broker} with {db} (seed {seed})")
    result, report = run_scenarios(
        [p.scenario for p in planned],
        RunSettings(seed=seed, broker=broker, db=db, report_root=out_dir),
        out_dir / "pipeline", _Printer([p.scenario.name for p in planned], progress, began))
    by_name = {s.name: s for s in result.scenarios}
    results = [(p, by_name[p.scenario.name]) for p in planned]
    rungs = tuple(rung_from(p.kind, p.rate, r, _ops(r)) for p, r in results
                  if p.kind not in (DRAIN, RECOVERY))
    drain = next(outage_from(p, r) for p, r in results if p.kind == DRAIN)
    outages = tuple(outage_from(p, r) for p, r in results if p.kind == RECOVERY)
    recovery = tuple(summarise(outages))
    sections = (lag_section(rungs, raw), write_section(rungs, raw_db, lag_bound_ms),
                drain_section(drain, raw), recovery_section(recovery, drain_rate(drain), raw))
    return ReplicationBench(broker, db, plan, lag_bound_ms, raw, raw_db, rungs, drain,
                            outages, recovery, sections,
                            {s.name: s.verdict for s in result.scenarios}, str(report))


def report_lines(data: ReplicationBench) -> list[str]:
    raw = data.raw_broker
    lines = [f"{data.broker} ({raw.detail}), services on {data.db}",
             f"raw broker publish+consume: {raw.publish_consume_per_s:.0f} msg/s "
             f"({raw.messages} messages, batched confirms); raw {data.raw_db.db}: "
             f"{data.raw_db.per_s:.0f} single-row transactions/s",
             "rungs (offered -> achieved writes/s, lag p50/p95/p99 ms, verdict):",
             *(f"  {r.offered:6g} -> {r.achieved:7.1f}  {r.lag.p50:8.1f} {r.lag.p95:8.1f} "
               f"{r.lag.p99:8.1f}  {r.verdict}" for r in data.rungs)]
    for section in data.sections:
        lines += ["", *section.lines()]
    failed = {name: v for name, v in data.verdicts.items()
              if v not in ("pass", "not_applicable")}
    if failed:
        lines += ["", "scenarios that did not pass (their figures measure something else): "
                  + ", ".join(f"{name} {v}" for name, v in failed.items())]
    if raw.lost:
        lines.append(f"the raw consumer missed {raw.lost} message(s): the raw end-to-end "
                     "figures are incomplete")
    return lines


def replication_command(args: argparse.Namespace) -> int:
    """The `harness bench replication` entry point (group replication_chaos_harness.benches).
    --quick: rungs 100 and 200 writes/s, one outage of each type, smaller raw measures."""
    if not args.lag_bound_ms > 0:
        raise ConfigError("--lag-bound-ms", f"must be > 0, got {args.lag_bound_ms}",
                          "e.g. --lag-bound-ms 1000")
    plan = plan_for(args.quick, parse_rates(args.rates), args.repeats)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    # Validated before anything starts (e.g. --db postgres without PostgreSQL installed).
    RunSettings(seed=seed, broker=args.broker, db=args.db)
    out_dir = figures.bench_dir(Path(args.report_dir)).resolve()
    started = time.monotonic()
    print(f"bench replication on {args.broker} with {args.db}"
          f"{' (quick)' if args.quick else ''}: rungs {', '.join(f'{r:g}' for r in plan.rates)}"
          f" writes/s, {plan.repeats} repeat(s) of each outage; seed {seed}", flush=True)
    data = run_replication_bench(
        out_dir, args.broker, args.db, plan, seed, args.lag_bound_ms,
        min(args.messages, QUICK_MESSAGES) if args.quick else args.messages,
        1 if args.quick else RAW_ROUNDS,
        QUICK_RAW_DB_TRANSACTIONS if args.quick else RAW_DB_TRANSACTIONS,
        lambda line: print(line, flush=True))
    elapsed = round(time.monotonic() - started, 1)
    path = figures.save(out_dir, {**data.to_dict(), "quick": args.quick, "seed": seed,
                                  "elapsed_s": elapsed})
    print()
    print("\n".join(report_lines(data)))
    print(f"\n{elapsed:.0f} s; data: {path}; scenarios' report: {data.pipeline_report}")
    return 0 if data.all_passed and not data.raw_broker.lost else 1
