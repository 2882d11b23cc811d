"""Drives a workload against the publisher's HTTP API, open loop, in a thread.

Open loop: write i is due at i / rate_per_s from the load's start and is sent then,
whatever became of the writes before it, so a slow answer never lowers the rate offered
(a client that waits for each answer before its next write offers at most 1 / latency,
and the lag it measures belongs to that lower rate). The writes in flight at once are
capped at spec.concurrency, a safety bound: a write whose due time finds the cap full is
sent as soon as a slot frees, and its record says so (`cap_full`, `sent_late_ms`), so a run
that could not keep its schedule shows it rather than silently offering less. Latency is
measured from the intended send time (`latency_ms`: due time to answer), so a stall of the
driver or of the publisher counts in full instead of being hidden by a later send.

Determinism: write i is generated from the seed and from the answers to writes
0 .. i - concurrency, learnt in index order. Those answers are the ones that must be in
before write i may go out anyway (or more than `concurrency` writes would be in flight),
so the writes are a function of the seed and of the publisher's answers whatever the
timing: a replay sends the same writes when the publisher answers the same way. With
concurrency 1 that is the plain sequential, closed-loop workload. What concurrency changes
is order at the publisher: the writes in flight together commit in whatever order its
threads get there, so sequences and versions no longer follow operation indexes. A
publisher that commits one write at a time (SQLite has a single writer) queues the rest,
as it would for real clients.

Bounded twice: it stops after spec.max_ops operations or spec.duration_s (plus a grace
period), whichever comes first, and stop() ends it early.

A write that fails is recorded (`ok` false, the error) and the load goes on: writes are
expected to fail while the publisher is down. `indeterminate` marks a failure after the
request may have reached the publisher (the connection broke or timed out before an
answer): such a write may have committed without being acknowledged.

Each write's record carries its schedule: `due_s` (when it was due, seconds from the
load's start), `sent_late_ms` (how long after that it was sent), `cap_full` (its due time
found `concurrency` writes unanswered) and `latency_ms`; harness/metrics.py reads the
offered and achieved rates back from them.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.history import History
from harness.workload.generator import Operation, WorkloadGenerator

# The publisher's answer to one write: status and body, or None when there was none.
Answer = tuple[int, dict[str, Any]] | None
# Failures where the request never left the client: the write cannot have happened.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)


@dataclass(frozen=True)
class Slot:
    """When a write was due: `due` on the monotonic clock, `due_s` from the load's start;
    `cap_full`: at that moment `concurrency` writes were unanswered, so it went out late."""

    due: float
    due_s: float
    cap_full: bool


@dataclass
class DriverStats:
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    last_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)  # acknowledged, from due time
    behind_schedule: int = 0  # writes whose due time found the cap on writes in flight full


class WorkloadDriver:
    def __init__(self, generator: WorkloadGenerator, publisher_url: str, history: History,
                 grace_s: float = 5.0, transport: httpx.BaseTransport | None = None) -> None:
        self.generator = generator
        self.history = history
        self.grace_s = grace_s
        self.publisher_url = publisher_url
        self.transport = transport  # None: real connections (a test passes a fake)
        self.stats = DriverStats()
        self._stats_lock = threading.Lock()
        # One client per worker thread: each in-flight write has its own connection.
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run_guarded, name="workload", daemon=True)

    def start(self) -> None:
        self.stats.started_at = time.time()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout_s: float | None = None) -> DriverStats:
        """Block until the workload ends; re-raise anything that broke the driver."""
        self._thread.join(timeout_s)
        with self._stats_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        if self._error is not None:
            raise self._error
        return self.stats

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run_guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # re-raised from wait() in the caller's thread
            self._error = exc
        finally:
            self.stats.finished_at = time.time()

    def _run(self) -> None:
        spec = self.generator.spec
        interval_s = 1.0 / spec.rate_per_s
        start = time.monotonic()
        hard_deadline = start + spec.duration_s + self.grace_s
        issued: list[tuple[Operation, Future[Answer]]] = []
        observed = 0  # answers learnt by the generator: those of ops 0 .. observed - 1
        # `concurrency` threads: a write never waits for a thread, only for the answers
        # it is generated from, which also keeps at most `concurrency` in flight.
        with ThreadPoolExecutor(spec.concurrency, thread_name_prefix="workload") as pool:
            for index in range(spec.max_ops):
                if self._stop.is_set() or time.monotonic() > hard_deadline:
                    break
                due = start + index * interval_s
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                needed = issued[observed:max(observed, index - spec.concurrency + 1)]
                cap_full = not all(future.done() for _, future in needed)
                if cap_full:
                    with self._stats_lock:
                        self.stats.behind_schedule += 1
                for op, future in needed:
                    self._observe(op, future)
                observed += len(needed)
                op = self.generator.next_operation()
                slot = Slot(due, round(due - start, 4), cap_full)
                issued.append((op, pool.submit(self._execute, op, slot)))
            for op, future in issued[observed:]:
                self._observe(op, future)

    def _observe(self, op: Operation, future: Future[Answer]) -> None:
        """Wait for the op's answer (bounded by the client's timeout) and learn from it."""
        answer = future.result()
        if answer is not None:
            self.generator.observe(op, *answer)

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.publisher_url, timeout=5.0,
                                  transport=self.transport)
            self._local.client = client
            with self._stats_lock:
                self._clients.append(client)
        return client

    def _execute(self, op: Operation, slot: Slot) -> Answer:
        with self._stats_lock:
            self.stats.attempted += 1
        schedule = {"due_s": slot.due_s, "cap_full": slot.cap_full,
                    "sent_late_ms": round((time.monotonic() - slot.due) * 1000, 3)}
        try:
            response = self._send(op)
            status = response.status_code
            body = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            with self._stats_lock:
                self.stats.failed += 1
                self.stats.last_error = error
            self.history.record("op", index=op.index, op=op.kind, product_id=op.product_id,
                                ok=False, error=error,
                                indeterminate=not isinstance(exc, NOT_SENT), **schedule,
                                latency_ms=round((time.monotonic() - slot.due) * 1000, 3))
            return None
        latency_ms = (time.monotonic() - slot.due) * 1000
        ok = status in (200, 201)
        with self._stats_lock:
            if ok:
                self.stats.succeeded += 1
                self.stats.latencies_ms.append(latency_ms)
            else:
                self.stats.failed += 1
                self.stats.last_error = f"HTTP {status}: {body.get('error', '')}"
        self.history.record(
            "op", index=op.index, op=op.kind, product_id=body.get("id", op.product_id),
            ok=ok, status=status, version=body.get("version"), event_id=body.get("event_id"),
            sequence=body.get("sequence"), **schedule, latency_ms=round(latency_ms, 3))
        return status, body

    def _send(self, op: Operation) -> httpx.Response:
        client = self._client()
        if op.kind == "create":
            return client.post("/products", json=op.body)
        if op.kind == "update":
            return client.put(f"/products/{op.product_id}", json=op.body)
        if op.kind == "stock":
            return client.post(f"/products/{op.product_id}/stock", json=op.body)
        return client.delete(f"/products/{op.product_id}")
