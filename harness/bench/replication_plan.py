"""The scenarios `harness bench replication` runs, built here from its figures (none is in
the catalogue): a steady-state rung per offered write rate, one saturation rung, one drain
of a backlog, and each fault type's outage, repeated.

Every workload lets up to `CONCURRENCY` writes be in flight, so the offered rate holds
while a write takes longer than 1/rate (one write at a time would silently offer less);
what the publisher achieved is read from each result (writes acknowledged / load time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.errors import ConfigError
from harness.links import CONSUMER_BROKER, RELAY_BROKER
from harness.scenario import FaultStep, Scenario
from harness.workload import WorkloadSpec

LADDER_FULL = (50.0, 100.0, 200.0, 400.0)
LADDER_QUICK = (100.0, 200.0)
# Stalls of a loaded machine (tens of ms) must not hold the schedule back at 400/s.
CONCURRENCY = 16
INITIAL_PRODUCTS = 50
# Offered far above what the publisher commits, so its achieved rate is its capacity.
SATURATION_RATE = 2000.0
SATURATION_CONCURRENCY = 32
# The rate the drain's backlog and the outages' load are written at.
LOAD_RATE = 200.0
# Seconds of load before a fault: the steady state is shown first.
FAULT_AT_S = 2.0
OUTAGE_S = 10.0
# After the heal, load goes on this long, so recovery happens under load.
AFTER_HEAL_S = 3.0
# The drain's fault is healed this long after the last write is due.
DRAIN_HEAL_AFTER_LOAD_S = 0.5
CONVERGE_TIMEOUT_S = 40.0
# Fault types whose recovery is measured: (action, target). The broker's three are held
# to the design's bound; the consumer's and its link's are reported beside them.
RECOVERY_FAULTS: tuple[tuple[str, str], ...] = (
    ("kill", "broker"), ("stop", "broker"), ("pause", "broker"),
    ("kill", "consumer"), ("link_down", CONSUMER_BROKER))
BROKER_FAULTS = frozenset(f"{action}:broker" for action in ("kill", "stop", "pause"))

RUNG, SATURATION, DRAIN, RECOVERY = "rung", "saturation", "drain", "recovery"


@dataclass(frozen=True)
class BenchPlan:
    rates: tuple[float, ...]
    rung_s: float  # load seconds of each rung (and of each raw end-to-end measure)
    saturation_s: float
    drain_load_s: float
    repeats: int  # of each fault type's outage

    def __post_init__(self) -> None:
        if not self.rates or any(not rate > 0 for rate in self.rates):
            raise ConfigError("--rates", f"must be positive write rates, got {self.rates}",
                              "e.g. --rates 50,100,200,400")
        if len(set(self.rates)) != len(self.rates):
            raise ConfigError("--rates", f"names a rate twice: {self.rates}",
                              "name each rate once")
        if self.repeats < 1:
            raise ConfigError("--repeats", f"must be >= 1, got {self.repeats}",
                              "e.g. --repeats 3")


def plan_for(quick: bool, rates: Sequence[float] | None, repeats: int) -> BenchPlan:
    """--quick: two rungs, shorter loads, one outage of each type."""
    if quick:
        return BenchPlan(tuple(rates or LADDER_QUICK), 6.0, 4.0, 6.0, 1)
    return BenchPlan(tuple(rates or LADDER_FULL), 10.0, 6.0, 12.0, repeats)


def parse_rates(text: str | None) -> tuple[float, ...] | None:
    """"50,100,200" -> (50.0, 100.0, 200.0); None when not given."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError("--rates", f"not a list of numbers: {text!r}",
                          "e.g. --rates 50,100,200,400") from exc


@dataclass(frozen=True)
class Planned:
    """A scenario of the bench and what it measures: `kind` is one of RUNG, SATURATION,
    DRAIN, RECOVERY; `fault` ("kill:broker") for a DRAIN or RECOVERY, `repeat` for a
    RECOVERY."""

    scenario: Scenario
    kind: str
    rate: float
    fault: str = ""
    repeat: int = 0


def _label(value: float) -> str:
    return f"{value:g}".replace(".", "_")


def _load_time_s(spec: WorkloadSpec) -> float:
    """When the last planned write is due, from the start of the load."""
    return spec.max_ops / spec.rate_per_s


def rung(rate: float, duration_s: float) -> Planned:
    scenario = Scenario(
        name=f"bench_rate_{_label(rate)}",
        description=f"steady state at {rate:g} writes/s for {duration_s:g} s (bench ladder)",
        workload=WorkloadSpec(rate_per_s=rate, duration_s=duration_s,
                              initial_products=INITIAL_PRODUCTS, concurrency=CONCURRENCY),
        converge_timeout_s=CONVERGE_TIMEOUT_S)
    return Planned(scenario, RUNG, rate)


def saturation(duration_s: float) -> Planned:
    scenario = Scenario(
        name="bench_saturation",
        description=f"{SATURATION_RATE:g} writes/s offered, {SATURATION_CONCURRENCY} in "
                    "flight: what the publisher commits at most (bench ladder)",
        workload=WorkloadSpec(rate_per_s=SATURATION_RATE, duration_s=duration_s,
                              initial_products=INITIAL_PRODUCTS,
                              concurrency=SATURATION_CONCURRENCY),
        converge_timeout_s=CONVERGE_TIMEOUT_S,
        # Offered more than it can take by design: a share of the writes planned is
        # expected to be left unwritten when the load's time is up.
        min_write_share=0.0)
    return Planned(scenario, SATURATION, SATURATION_RATE)


def drain(load_s: float) -> Planned:
    """The relay's link to the broker is down from FAULT_AT_S until just after the last
    write: every row written meanwhile waits in the outbox, and the heal releases them at
    once."""
    workload = WorkloadSpec(rate_per_s=LOAD_RATE, duration_s=load_s,
                            initial_products=INITIAL_PRODUCTS, concurrency=CONCURRENCY)
    down_s = _load_time_s(workload) - FAULT_AT_S + DRAIN_HEAL_AFTER_LOAD_S
    scenario = Scenario(
        name="bench_drain",
        description=f"relay -> broker link down for {down_s:.1f} s under {LOAD_RATE:g} "
                    "writes/s, then healed: the outbox's backlog drains (bench)",
        workload=workload,
        faults=(FaultStep("link_down", RELAY_BROKER, at_s=FAULT_AT_S, duration_s=down_s),),
        converge_timeout_s=CONVERGE_TIMEOUT_S)
    return Planned(scenario, DRAIN, LOAD_RATE, f"link_down:{RELAY_BROKER}")


def recovery(action: str, target: str, repeat: int) -> Planned:
    scenario = Scenario(
        name=f"bench_{action}_{target}_{repeat}",
        description=f"{action} on {target} for {OUTAGE_S:g} s under {LOAD_RATE:g} writes/s "
                    f"(bench recovery, repeat {repeat})",
        workload=WorkloadSpec(rate_per_s=LOAD_RATE,
                              duration_s=FAULT_AT_S + OUTAGE_S + AFTER_HEAL_S,
                              initial_products=INITIAL_PRODUCTS, concurrency=CONCURRENCY),
        faults=(FaultStep(action, target, at_s=FAULT_AT_S, duration_s=OUTAGE_S),),
        converge_timeout_s=CONVERGE_TIMEOUT_S)
    return Planned(scenario, RECOVERY, LOAD_RATE, f"{action}:{target}", repeat)


def build(plan: BenchPlan) -> list[Planned]:
    """In the order they run: the ladder, saturation, the drain (its rate bounds the
    outages' expected recovery), then each fault type's repeats, interleaved so drift on
    a shared machine spreads over every type alike."""
    return [*(rung(rate, plan.rung_s) for rate in plan.rates),
            saturation(plan.saturation_s),
            drain(plan.drain_load_s),
            *(recovery(action, target, repeat) for repeat in range(1, plan.repeats + 1)
              for action, target in RECOVERY_FAULTS)]
