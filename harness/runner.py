"""Runs one scenario: start the system, drive the load, inject the schedule, wait for
convergence, collect everything, run the checks.

Everything started is registered on one ExitStack, so it is healed and stopped on every
exit path: a pass, a failed check, an exception, or Ctrl-C.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import steady_state
from harness.brokers.kept import KeptBroker
from harness.brokers.registry import BrokerLease, broker_plugin
from harness.checkers.authorization import source_view
from harness.collected import Collected, ConsumerData, ConsumerObservation
from harness.consumers import FIRST, owner, role
from harness.errors import HarnessError, SteadyStateNotReached
from harness.evaluation import evaluate
from harness.faults.base import Fault
from harness.faults.catalogue import ACTIONS, FaultRequest
from harness.faults.network import ToxicFault
from harness.history import History, read_history
from harness.links import CONSUMER_PUBLISHER
from harness.metrics import load_metrics, replication_metrics
from harness.observers.replica_db import matches_source
from harness.repair import detect_and_repair
from harness.results import ScenarioResult
from harness.runtime.base import Runtime
from harness.runtime.registry import PROCESSES, RuntimeChoice
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
# Lag that counts as felt for added latency: this share of its lowest value (latency
# minus jitter). On the relay's link the latency delays publisher confirms, and events
# written while a batch awaits its confirm wait only the rest of that round trip: their
# lags spread over [0, latency], and the lag a quarter of them reach (what recovery.py
# judges) is about 3/4 of it. Half leaves a margin for the spread.
LATENCY_SHARE = 0.5


def expected_lag_s(fault: Fault, target: str, duration_s: float,
                   instances: int = 1) -> float | None:
    """The replication lag a fault must add to count as felt (on top of the lag before it,
    see harness/checkers/recovery.py), or None when replication lag cannot show it (a
    publisher API link carries no events; a dead publisher API makes writes fail instead
    of slowing them; while one of a consumer's `instances` is down, the others take over
    its messages)."""
    if target == "publisher" or role(target) == CONSUMER_PUBLISHER \
            or not fault.slows_replication:
        return None
    if instances > 1 and role(target) == FIRST:
        return None
    if isinstance(fault, ToxicFault) and fault.toxic_type == "latency":
        lowest_ms = (float(fault.attributes.get("latency", 0))
                     - float(fault.attributes.get("jitter", 0)))
        return round(LATENCY_SHARE * max(0.0, lowest_ms) / 1000, 3)
    if duration_s < IMPACT_MIN_DURATION_S:
        return None
    return round(IMPACT_SHARE * duration_s, 3)


def plan_faults(scenario: Scenario, rng: random.Random) -> list[PlannedFault]:
    planned = []
    for step in scenario.faults:
        at_s, params = step.resolve(rng)
        planned.append(PlannedFault(step, at_s, params))
    return sorted(planned, key=lambda p: p.at_s)


# The steady-state proof before the first fault waits until every event written so far
# is processed, which takes about one replication lag (seconds on a slow broker): it starts
# this long before the fault, so the fault still comes when the scenario says.
STEADY_STATE_LEAD_S = 3.0


@dataclass
class LastingFault:
    """A fault injected and not healed yet. It heals on its own timer (a thread), so the
    schedule's next fault may start while it lasts: a fault on another target at once,
    one on the same target only once this one healed (a component cannot be paused while
    it is down, nor a link cut twice)."""

    target: str
    cancel: threading.Event = field(default_factory=threading.Event)
    errors: list[BaseException] = field(default_factory=list)
    thread: threading.Thread | None = None

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def stop(self) -> None:
        """The run is ending early: the timer stops (the run's ExitStack heals the fault),
        and a heal already under way finishes first."""
        self.cancel.set()
        if self.thread is not None:
            self.thread.join(HEAL_JOIN_S)


# How long an early end waits for a heal under way (a broker restart takes seconds).
HEAL_JOIN_S = 60.0


def proof_start_s(fault_at_s: float) -> float:
    """When, in seconds into the load, the steady-state proof before a fault at
    `fault_at_s` starts: STEADY_STATE_LEAD_S before it, yet never before half of
    `fault_at_s` (the system must first have had time to replicate something)."""
    return max(fault_at_s - STEADY_STATE_LEAD_S, fault_at_s / 2)


class ScenarioRun:
    def __init__(self, scenario: Scenario, settings: RunSettings, run_dir: Path,
                 progress: Progress, runtime: RuntimeChoice = PROCESSES,
                 run_id: str = "", kept_broker: KeptBroker | None = None) -> None:
        self.scenario = scenario
        # A broker kept across runs (harness explore): this run borrows a namespace of it
        # instead of starting a broker of its own.
        self.kept_broker = kept_broker
        self.settings = settings
        self.runtime = runtime
        self.run_id = run_id or run_dir.name
        self.dir = run_dir / scenario.name
        self.progress = progress
        self.result = ScenarioResult(scenario.name, settings.seed, report_dir=str(self.dir))

    def execute(self) -> ScenarioResult:
        """Run the scenario; any exception but an interrupt becomes the scenario's error
        (its traceback in error.txt), so the session goes on to the next scenario."""
        started = time.monotonic()
        reason = self.scenario.not_applicable_on(broker_plugin(self.settings.broker)
                                                 .capabilities, self.settings.db)
        if reason:
            # Reported as such, never started and never counted as a pass.
            self.result.not_applicable = reason
            self.progress(f"not applicable on {self.settings.broker}: {reason}")
            return self.result
        self.dir.mkdir(parents=True, exist_ok=True)
        history = History(self.dir / "history.jsonl")
        # Until the steady state is shown, a HarnessError means the system could not be set
        # up; after it, that the scenario could not be carried out (see ERROR_KINDS).
        self.setting_up = True
        try:
            with ExitStack() as stack:
                stack.callback(history.close)
                self._run(stack, history)
        except Exception as exc:  # one scenario's crash must not end the session
            if not isinstance(exc, HarnessError):
                kind = "internal"
            else:
                kind = "setup" if self.setting_up else "run"
            self.result.error = f"{type(exc).__name__}: {exc}"
            self.result.error_kind = kind
            (self.dir / "error.txt").write_text("".join(traceback.format_exception(exc)))
            self.progress(f"error: {self.result.error.splitlines()[0]} "
                          f"(traceback in {self.dir / 'error.txt'})")
        finally:
            self.result.duration_s = time.monotonic() - started
        return self.result

    def _prove_steady_state(self, sut: SystemUnderTest, history: History, before: str) -> None:
        """The steady-state hypothesis (harness/steady_state.py), `before` the first fault
        (or the load's end): raises SteadyStateNotReached when the system does not
        replicate, so the scenario errors as set-up instead of yielding findings."""
        # A late joiner got its history by resync, not through its log: not judged here.
        keys = [k for k in sut.consumer_apis if self.scenario.by_key[k].join_at_s == 0]
        outcome = steady_state.prove(
            sut.published_events,
            {k: steady_state.ProcessedLog(sut.consumer_apis[k]) for k in keys})
        history.record("steady_state", before=before, **outcome.record())
        if not outcome.ok:
            raise SteadyStateNotReached(steady_state.not_reached(before, outcome.details))
        self.result.metrics["steady_state_s"] = round(max(outcome.caught_up_s.values()), 3)
        self.progress(f"steady state: {outcome.details}")
        self.setting_up = False

    def _tear_down(self, runtime: Runtime) -> None:
        """Stop everything the runtime started; how long that took is a figure of its own
        (`harness bench runtimes`)."""
        t0 = time.monotonic()
        runtime.close()
        self.result.metrics["teardown_s"] = round(time.monotonic() - t0, 2)

    def _run(self, stack: ExitStack, history: History) -> None:
        scenario, settings = self.scenario, self.settings
        rng = scenario.rng(settings.seed)
        plan = plan_faults(scenario, rng)
        history.record("scenario", name=scenario.name, seed=settings.seed,
                       variant=settings.variant, broker=settings.broker, db=settings.db,
                       plan=[p.to_dict() for p in plan])

        def lifecycle(what: str, data: Any) -> None:
            history.record("lifecycle", event=what, **data)

        lease: BrokerLease | None = None
        if self.kept_broker is not None:
            lease = self.kept_broker.lend(lifecycle)
            stack.callback(lease.close)  # registered first: closed once all else stopped
            history.record("broker_lease", namespace=lease.namespace)
        runtime = self.runtime.create(
            self.dir, self.run_id, on_event=lifecycle,
            network=self.kept_broker.network if self.kept_broker is not None else None)
        stack.callback(self._tear_down, runtime)
        auto = scenario.repair is not None and scenario.repair.resync == "auto"
        sut = SystemUnderTest(runtime, settings, self.dir,
                              ("--auto-resync", "known") if auto else (), scenario.consumers,
                              lease)
        stack.callback(sut.close)
        broker_text = (f"on the kept {settings.broker} broker (namespace {lease.namespace})"
                       if lease is not None else f"with a {settings.broker} broker")
        self.progress(f"starting publisher and {_consumers_text(scenario)} {broker_text} "
                      f"({settings.runtime})")
        t0 = time.monotonic()
        sut.start()
        others = {key: s for key, s in scenario.by_key.items() if key != FIRST}
        for key, consumer in others.items():
            if consumer.join_at_s == 0:
                sut.start_consumer(key)
        self.result.metrics["setup_s"] = round(time.monotonic() - t0, 2)

        generator = WorkloadGenerator(scenario.workload,
                                      random.Random(f"{settings.seed}:{scenario.name}:load"))
        driver = WorkloadDriver(generator, sut.publisher.base_url, history)
        stack.callback(driver.stop)
        spec = scenario.workload
        self.progress(f"load: {spec.max_ops} writes at {spec.rate_per_s:.0f}/s, up to "
                      f"{spec.concurrency} in flight"
                      + (f", {len(plan)} faults scheduled" if plan else ""))
        driver.start()
        load_started = time.monotonic()
        # A late joiner's entry is its key; at the same moment it comes first (a fault on
        # it is scheduled strictly after, see Scenario).
        timeline: list[tuple[float, PlannedFault | str]] = [
            *((c.join_at_s, key) for key, c in others.items() if c.join_at_s > 0),
            *((p.at_s, p) for p in plan)]
        lasting: list[LastingFault] = []
        for at_s, planned in sorted(timeline, key=lambda item: item[0]):
            starts_proof = self.setting_up and not isinstance(planned, str)
            self._wait_and_report(driver, sut, load_started + (
                proof_start_s(at_s) if starts_proof else at_s))
            if isinstance(planned, str):
                self.progress(f"{planned} joins" + (" (initial full sync)"
                              if others[planned].initial_sync else ""))
                sut.start_consumer(planned)
                history.record("join", consumer=planned, at_s=at_s)
            else:
                if self.setting_up:
                    self._prove_steady_state(sut, history, "before the first fault")
                    # The proof started early enough to be over by now, mostly; if it
                    # was not, the fault comes late rather than before the proof.
                    self._wait_and_report(driver, sut, load_started + at_s)
                for other in lasting:
                    if other.target == planned.step.target:
                        self._await_heal(other, driver, sut)
                applied = self._apply_fault(stack, history, sut, planned)
                if applied is not None:
                    lasting.append(applied)
        for applied in lasting:
            self._await_heal(applied, driver, sut)
        # Healed on their own timers, recorded as they healed: in time order again.
        self.result.faults.sort(key=lambda record: float(record["at"]))
        if self.setting_up:  # no fault: shown halfway through the load instead
            self._wait_and_report(driver, sut, load_started + spec.duration_s / 2)
            self._prove_steady_state(sut, history, "halfway through the load")
        while driver.running:
            self._wait_and_report(driver, sut, time.monotonic() + 2.0, load_only=True)
        stats = driver.wait()
        load_ended = time.monotonic()
        self.progress(f"load done: {stats.succeeded} writes ok, {stats.failed} failed"
                      + (f", {stats.behind_schedule} sent late (all {spec.concurrency} "
                         "slots in flight busy)" if stats.behind_schedule else "")
                      + "; waiting for convergence")

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
                     planned: PlannedFault) -> LastingFault | None:
        """Inject `planned` now. An instant fault is healed and recorded before this
        returns; a lasting one heals on its own timer, returned to be awaited."""
        step = planned.step
        rng = random.Random(f"{self.settings.seed}:{self.scenario.name}:{planned.at_s}")
        fault: Fault = ACTIONS[step.action].build(
            sut, FaultRequest(step.target, planned.params, step.stream, rng))
        stack.callback(fault.heal)
        self.progress(f"fault: {fault.name} {planned.params or ''}".rstrip())
        injected_at = time.time()
        fault.inject()
        if not step.duration_s:
            fault.heal()
            self._record_fault(history, planned, fault, injected_at)
            return None
        lasting = LastingFault(step.target)

        def heal_on_time() -> None:
            try:
                if lasting.cancel.wait(step.duration_s):
                    return
                fault.heal()
                self._record_fault(history, planned, fault, injected_at)
            except BaseException as exc:  # raised again in the run's thread
                lasting.errors.append(exc)

        lasting.thread = threading.Thread(target=heal_on_time, name=f"heal {fault.name}",
                                          daemon=True)
        lasting.thread.start()
        stack.callback(lasting.stop)  # before fault.heal: the stack unwinds in reverse
        return lasting

    def _record_fault(self, history: History, planned: PlannedFault, fault: Fault,
                      injected_at: float) -> None:
        step = planned.step
        evidence = fault.evidence()
        healed_at = time.time()
        record = {"fault": fault.name, "target": step.target, "phase": "inject",
                  "at": injected_at,
                  "healed_at": healed_at, "params": planned.params,
                  "expected_lag_s": expected_lag_s(fault, step.target,
                                                   healed_at - injected_at,
                                                   self._instances_of(step.target)),
                  "verified": evidence.verified, "evidence": evidence.description,
                  **fault.details()}
        history.record("fault", **record)
        self.result.faults.append(record)

    def _await_heal(self, lasting: LastingFault, driver: WorkloadDriver,
                    sut: SystemUnderTest) -> None:
        """Wait until `lasting` healed, reporting the load meanwhile; its heal's error,
        if any, is raised here."""
        next_report = time.monotonic() + 2.0
        while lasting.alive():
            if lasting.thread is not None:
                lasting.thread.join(0.1)
            if driver.running and time.monotonic() >= next_report:
                next_report += 2.0
                self._report_load(driver, sut)
        if lasting.errors:
            raise lasting.errors[0]

    def _instances_of(self, target: str) -> int:
        """How many instances the consumer a fault target belongs to runs (1 for a target
        that is not a consumer's)."""
        key = owner(target)
        return self.scenario.by_key[key].instances if key is not None else 1

    def _wait_and_report(self, driver: WorkloadDriver, sut: SystemUnderTest,
                         until: float, load_only: bool = False) -> None:
        """Sleep until `until`, reporting the load every 2 s while it runs; with
        `load_only`, return as soon as the load ends (its duration is measured from then)."""
        next_report = time.monotonic() + 2.0
        while time.monotonic() < until and driver.running:
            time.sleep(min(0.05, max(0.0, until - time.monotonic())))
            if time.monotonic() >= next_report:
                next_report += 2.0
                self._report_load(driver, sut)
        if time.monotonic() < until and not load_only:
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
        """Every consumer's replica, read from its database file, equals the source's rows
        (the publisher's export) field for field. The harness compares the data itself:
        the services' own hashes would hide a bug in their digest."""
        try:
            source = sut.source_rows()
            replicas = {key: sut.replica_db_rows(key) for key in sut.consumer_apis}
        except HarnessError:
            return False
        # Each against the source as it may see it (harness/contract/grants.py).
        return all(matches_source(source_view(source, sut.specs[key].grants), replica)
                   for key, replica in replicas.items())

    def _await_convergence(self, sut: SystemUnderTest, load_ended: float) -> float | None:
        """Seconds from the end of the load until every replica matched (as
        _snapshots_equal reads them), or None."""
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
        # The run is over: what the observers saw is final.
        sut.stop_sampling()
        tap, tap_status = sut.finish_tap()
        source = sut.source_rows()
        replica, seen = _observe_consumer(sut, "consumer")
        published, deliveries = sut.published_events(), sut.deliveries()
        dead_letters = sut.dead_letters()
        try:
            broker_dead_letters: int | None = sut.broker.dead_letter_depth(sut.consumer_name)
        except HarnessError:
            broker_dead_letters = None  # e.g. the queue was deleted by a data-loss fault
        others: dict[str, ConsumerData] = {}
        for key in sut.consumer_apis:
            if key != FIRST:
                replica_k, seen_k = _observe_consumer(sut, key)
                others[key] = ConsumerData(replica_k, sut.deliveries(key),
                                           scenario.by_key[key].initial_sync, seen_k,
                                           sut.joined_at[key])
        history.record("final_state", source_rows=len(source), replica_rows=len(replica),
                       published=len(published), deliveries=len(deliveries))
        observations = {FIRST: seen, **{key: data.observed for key, data in others.items()
                                        if data.observed is not None}}
        history.record("observation", tap=tap_status, **{
            key: {"sampler": o.sampler, "queue": o.queue, "queue_error": o.queue_error}
            for key, o in observations.items()})
        history.flush()
        ops = _read_ops(history.path)

        collected = Collected(
            ops=ops, source=source, replica=replica, published=published,
            deliveries=deliveries, dead_letters=dead_letters,
            broker_dead_letters=broker_dead_letters, faults=self.result.faults,
            faults_planned=faults_planned, converged_after_s=converged_after_s,
            converge_timeout_s=scenario.converge_timeout_s, settle_s=scenario.settle_s,
            integrity=integrity, other_consumers=others, tap=tap, tap_status=tap_status,
            observed=seen,
            writes_planned=scenario.workload.max_ops,
            min_write_share=scenario.min_write_share,
            grants={key: list(spec.grants) for key, spec in sut.specs.items()})
        # Stored before judging: `harness check` re-judges exactly these files.
        collected.save(self.dir)
        evaluation = evaluate(collected)
        for check in evaluation.checks:
            history.record("check", **check.to_dict())
        self.result.checks = evaluation.checks
        self.result.faults = evaluation.faults
        self.result.metrics.update(replication_metrics(deliveries))
        self.result.metrics.update(load_metrics(ops))  # offered vs achieved write rate
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


def _consumers_text(scenario: Scenario) -> str:
    """E.g. "consumer" or "2 consumers (consumer2: 2 instances)", for the progress line."""
    several = [f"{key}: {spec.instances} instances"
               for key, spec in scenario.by_key.items() if spec.instances > 1]
    count = len(scenario.consumers)
    return ("consumer" if count == 1 else f"{count} consumers") \
        + (f" ({', '.join(several)})" if several else "")


def _read_ops(path: Path) -> list[dict[str, Any]]:
    return [r for r in read_history(path) if r["kind"] == "op"]


def _observe_consumer(sut: SystemUnderTest, key: str
                      ) -> tuple[list[dict[str, Any]], ConsumerObservation]:
    """The replica as the consumer's API reports it, and what the harness saw by itself.
    The database file is read before and after the API, until both reads agree (three
    tries): the two views are then of one state, so any difference is a finding."""
    for _ in range(3):
        before = sut.replica_db_rows(key)
        api = sut.replica_rows(key)
        after = sut.replica_db_rows(key)
        if before == after:
            break
    sampler = sut.samplers[key]
    try:
        queue: dict[str, Any] | None = asdict(sut.queue_counters(key))
        queue_error = ""
    except HarnessError as exc:
        queue, queue_error = None, str(exc)
    return api, ConsumerObservation(
        replica_db=after, samples=sampler.changes(), sample_reads=sampler.reads(),
        sampler=sampler.status(), queue=queue, queue_error=queue_error,
        resyncs=sut.resync_reports(key))
