"""Runs one scenario: start the system, drive the load, inject the schedule, wait for
convergence, collect everything, run the checks.

Everything started is registered on one ExitStack, so it is healed and stopped on every
exit path: a pass, a failed check, an exception, or Ctrl-C.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.collected import Collected, SecondConsumerData
from harness.errors import HarnessError
from harness.evaluation import evaluate
from harness.faults.base import Fault
from harness.faults.catalogue import ACTIONS, FaultRequest
from harness.faults.network import ToxicFault
from harness.history import History, read_history
from harness.links import CONSUMER_PUBLISHER
from harness.metrics import replication_metrics
from harness.repair import detect_and_repair
from harness.results import ScenarioResult
from harness.runtime.processes import ProcessRuntime
from harness.scenario import FaultStep, Scenario
from harness.settings import RunSettings
from harness.sut import SystemUnderTest
from harness.workload import WorkloadDriver, WorkloadGenerator

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PlannedFault:
    step: FaultStep
    at_s: float
    params: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.step.action, "target": self.step.target,
                "at_s": round(self.at_s, 3), "duration_s": self.step.duration_s,
                "params": {k: round(v, 4) for k, v in self.params.items()}}


# A fault shorter than this is judged by its own evidence (e.g. an exit status) only.
IMPACT_MIN_DURATION_S = 1.0
# Lag that counts as felt for an outage or a throttle: this share of its duration.
IMPACT_SHARE = 0.3


def expected_lag_s(fault: Fault, target: str, duration_s: float) -> float | None:
    """The replication lag a fault must cause to count as felt, or None when replication
    lag cannot show it (the publisher API link carries no events; a dead publisher API
    makes writes fail instead of slowing them)."""
    if target in ("publisher", CONSUMER_PUBLISHER) or not fault.slows_replication:
        return None
    if isinstance(fault, ToxicFault) and fault.toxic_type == "latency":
        return round(0.8 * float(fault.attributes.get("latency", 0)) / 1000, 3)
    if duration_s < IMPACT_MIN_DURATION_S:
        return None
    return round(IMPACT_SHARE * duration_s, 3)


def plan_faults(scenario: Scenario, rng: random.Random) -> list[PlannedFault]:
    planned = []
    for step in scenario.faults:
        at_s, params = step.resolve(rng)
        planned.append(PlannedFault(step, at_s, params))
    return sorted(planned, key=lambda p: p.at_s)


class ScenarioRun:
    def __init__(self, scenario: Scenario, settings: RunSettings, run_dir: Path,
                 progress: Progress) -> None:
        self.scenario = scenario
        self.settings = settings
        self.dir = run_dir / scenario.name
        self.progress = progress
        self.result = ScenarioResult(scenario.name, settings.seed, report_dir=str(self.dir))

    def execute(self) -> ScenarioResult:
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        history = History(self.dir / "history.jsonl")
        try:
            with ExitStack() as stack:
                stack.callback(history.close)
                self._run(stack, history)
        except HarnessError as exc:
            self.result.error = f"{type(exc).__name__}: {exc}"
            self.progress(f"error: {self.result.error.splitlines()[0]}")
        finally:
            self.result.duration_s = time.monotonic() - started
        return self.result

    def _run(self, stack: ExitStack, history: History) -> None:
        scenario, settings = self.scenario, self.settings
        rng = scenario.rng(settings.seed)
        plan = plan_faults(scenario, rng)
        history.record("scenario", name=scenario.name, seed=settings.seed,
                       variant=settings.variant, broker=settings.broker,
                       plan=[p.to_dict() for p in plan])

        runtime = ProcessRuntime(self.dir, on_event=lambda what, data:
                                 history.record("lifecycle", event=what, **data))
        stack.callback(runtime.close)
        auto = scenario.repair is not None and scenario.repair.resync == "auto"
        sut = SystemUnderTest(runtime, settings, self.dir,
                              ("--auto-resync", "known") if auto else ())
        stack.callback(sut.close)
        self.progress(f"starting {settings.broker} broker, publisher and consumer "
                      f"({settings.runtime})")
        t0 = time.monotonic()
        sut.start()
        second = scenario.second_consumer
        second_args = ("--initial-sync", "full") if second and second.initial_sync else ()
        if second is not None and second.join_at_s == 0:
            sut.start_consumer("consumer2", second_args)
        self.result.metrics["setup_s"] = round(time.monotonic() - t0, 2)

        generator = WorkloadGenerator(scenario.workload,
                                      random.Random(f"{settings.seed}:{scenario.name}:load"))
        driver = WorkloadDriver(generator, sut.publisher.base_url, history)
        stack.callback(driver.stop)
        spec = scenario.workload
        self.progress(f"load: {spec.max_ops} writes at {spec.rate_per_s:.0f}/s"
                      + (f", {len(plan)} faults scheduled" if plan else ""))
        driver.start()
        load_started = time.monotonic()
        timeline: list[tuple[float, PlannedFault | None]] = [(p.at_s, p) for p in plan]
        if second is not None and second.join_at_s > 0:
            timeline.append((second.join_at_s, None))  # None: the late joiner starts
        for at_s, planned in sorted(timeline, key=lambda item: item[0]):
            self._wait_and_report(driver, sut, load_started + at_s)
            if planned is None:
                self.progress("a second consumer joins"
                              + (" (initial full sync)" if second_args else ""))
                sut.start_consumer("consumer2", second_args)
                history.record("join", consumer="consumer2", at_s=at_s)
            else:
                self._apply_fault(stack, history, sut, planned)
        while driver.running:
            self._wait_and_report(driver, sut, time.monotonic() + 2.0)
        stats = driver.wait()
        load_ended = time.monotonic()
        self.progress(f"load done: {stats.succeeded} writes ok, {stats.failed} failed; "
                      "waiting for convergence")

        integrity = None
        if scenario.repair is not None:
            integrity = detect_and_repair(
                sut, scenario.repair, history, scenario.converge_timeout_s,
                lambda: self._snapshots_equal(sut), self.progress)
            load_ended = time.monotonic()
        convergence = self._await_convergence(sut, load_ended)
        self._collect_and_check(sut, history, convergence, stats.attempted,
                                len(plan), load_ended - load_started, integrity)

    # -- faults --------------------------------------------------------------------------
    def _apply_fault(self, stack: ExitStack, history: History, sut: SystemUnderTest,
                     planned: PlannedFault) -> None:
        step = planned.step
        rng = random.Random(f"{self.settings.seed}:{self.scenario.name}:{planned.at_s}")
        fault: Fault = ACTIONS[step.action].build(
            sut, FaultRequest(step.target, planned.params, step.stream, rng))
        stack.callback(fault.heal)
        self.progress(f"fault: {fault.name} {planned.params or ''}".rstrip())
        injected_at = time.time()
        fault.inject()
        if step.duration_s:
            time.sleep(step.duration_s)
        fault.heal()
        evidence = fault.evidence()
        healed_at = time.time()
        record = {"fault": fault.name, "target": step.target, "phase": "inject",
                  "at": injected_at,
                  "healed_at": healed_at, "params": planned.params,
                  "expected_lag_s": expected_lag_s(fault, step.target,
                                                   healed_at - injected_at),
                  "verified": evidence.verified, "evidence": evidence.description,
                  **fault.details()}
        history.record("fault", **record)
        self.result.faults.append(record)

    def _wait_and_report(self, driver: WorkloadDriver, sut: SystemUnderTest,
                         until: float) -> None:
        next_report = time.monotonic() + 2.0
        while time.monotonic() < until and driver.running:
            time.sleep(min(0.05, max(0.0, until - time.monotonic())))
            if time.monotonic() >= next_report:
                next_report += 2.0
                self._report_load(driver, sut)
        if time.monotonic() < until:
            time.sleep(max(0.0, until - time.monotonic()))

    def _report_load(self, driver: WorkloadDriver, sut: SystemUnderTest) -> None:
        stats = driver.stats
        total = driver.generator.spec.max_ops
        try:
            consumer = sut.consumer_stats()
            seen = f"applied {consumer['applied']}, lag p50 {consumer['lag_ms']['p50']:.0f}ms"
        except HarnessError:
            seen = "consumer not answering"
        self.progress(f"load {100 * stats.attempted // max(1, total)}% "
                      f"({stats.attempted}/{total} writes, {stats.failed} failed) | {seen}")

    # -- convergence ---------------------------------------------------------------------
    def _snapshots_equal(self, sut: SystemUnderTest) -> bool:
        """Every consumer's replica matches the source (count, categories, hash)."""
        try:
            source = sut.source_snapshot()
            replicas = [sut.replica_snapshot(key) for key in sut.consumer_apis]
        except HarnessError:
            return False
        return all(source[k] == replica[k] for replica in replicas
                   for k in ("count", "categories", "hash"))

    def _await_convergence(self, sut: SystemUnderTest, load_ended: float) -> float | None:
        """Seconds from the end of the load until the replica matched, or None."""
        deadline = load_ended + self.scenario.converge_timeout_s
        while time.monotonic() < deadline:
            if self._snapshots_equal(sut):
                return time.monotonic() - load_ended
            time.sleep(0.1)
        return None

    def _collect_and_check(self, sut: SystemUnderTest, history: History,
                           converged_after_s: float | None, ops_attempted: int,
                           faults_planned: int, load_s: float,
                           integrity: dict[str, Any] | None) -> None:
        scenario = self.scenario
        if converged_after_s is not None:
            self.progress(f"converged {converged_after_s:.2f}s after the load; "
                          f"settling {scenario.settle_s:.1f}s")
            time.sleep(scenario.settle_s)
        source, replica = sut.source_rows(), sut.replica_rows()
        published, deliveries = sut.published_events(), sut.deliveries()
        dead_letters = sut.dead_letters()
        try:
            broker_dead_letters: int | None = sut.broker.dead_letter_depth(sut.consumer_name)
        except HarnessError:
            broker_dead_letters = None  # e.g. the queue was deleted by a data-loss fault
        second = None
        if "consumer2" in sut.consumer_apis:
            assert scenario.second_consumer is not None
            second = SecondConsumerData(sut.replica_rows("consumer2"),
                                        sut.deliveries("consumer2"),
                                        scenario.second_consumer.initial_sync)
        history.record("final_state", source_rows=len(source), replica_rows=len(replica),
                       published=len(published), deliveries=len(deliveries))
        history.flush()
        ops = _read_ops(history.path)

        collected = Collected(
            ops=ops, source=source, replica=replica, published=published,
            deliveries=deliveries, dead_letters=dead_letters,
            broker_dead_letters=broker_dead_letters, faults=self.result.faults,
            faults_planned=faults_planned, converged_after_s=converged_after_s,
            converge_timeout_s=scenario.converge_timeout_s, settle_s=scenario.settle_s,
            integrity=integrity, second=second)
        # Stored before judging: `harness check` re-judges exactly these files.
        collected.save(self.dir)
        evaluation = evaluate(collected)
        for check in evaluation.checks:
            history.record("check", **check.to_dict())
        self.result.checks = evaluation.checks
        self.result.faults = evaluation.faults
        self.result.metrics.update(replication_metrics(deliveries))
        self.result.metrics.update({
            "writes_attempted": ops_attempted,
            "writes_ok": sum(1 for op in ops if op.get("ok")),
            "load_s": round(load_s, 2),
            "events_published": len(published),
            "converged_after_load_s": (round(converged_after_s, 3)
                                       if converged_after_s is not None else None),
            "faults_injected": len(self.result.faults),
            **evaluation.metrics,
        })


def _read_ops(path: Path) -> list[dict[str, Any]]:
    return [r for r in read_history(path) if r["kind"] == "op"]
