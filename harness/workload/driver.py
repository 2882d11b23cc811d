"""Drives a workload against the publisher's HTTP API at a fixed rate, in a thread.

Bounded twice: it stops after spec.max_ops operations or spec.duration_s (plus a grace
period), whichever comes first, and stop() ends it early.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from harness.history import History
from harness.workload.generator import Operation, WorkloadGenerator


@dataclass
class DriverStats:
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    last_error: str = ""
    latencies_ms: list[float] = field(default_factory=list)


class WorkloadDriver:
    def __init__(self, generator: WorkloadGenerator, publisher_url: str, history: History,
                 grace_s: float = 5.0) -> None:
        self.generator = generator
        self.history = history
        self.grace_s = grace_s
        self.client = httpx.Client(base_url=publisher_url, timeout=5.0)
        self.stats = DriverStats()
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
        self.client.close()
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
        for index in range(spec.max_ops):
            if self._stop.is_set() or time.monotonic() > hard_deadline:
                break
            due = start + index * interval_s
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._execute(self.generator.next_operation())

    def _execute(self, op: Operation) -> None:
        self.stats.attempted += 1
        began = time.monotonic()
        try:
            response = self._send(op)
            status = response.status_code
            body = response.json() if response.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            self.stats.failed += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            self.history.record("op", index=op.index, op=op.kind, product_id=op.product_id,
                                ok=False, error=self.stats.last_error)
            return
        latency_ms = (time.monotonic() - began) * 1000
        ok = status in (200, 201)
        if ok:
            self.stats.succeeded += 1
            self.stats.latencies_ms.append(latency_ms)
        else:
            self.stats.failed += 1
            self.stats.last_error = f"HTTP {status}: {body.get('error', '')}"
        self.generator.observe(op, status, body)
        self.history.record(
            "op", index=op.index, op=op.kind, product_id=body.get("id", op.product_id),
            ok=ok, status=status, version=body.get("version"), event_id=body.get("event_id"),
            sequence=body.get("sequence"), latency_ms=round(latency_ms, 3))

    def _send(self, op: Operation) -> httpx.Response:
        if op.kind == "create":
            return self.client.post("/products", json=op.body)
        if op.kind == "update":
            return self.client.put(f"/products/{op.product_id}", json=op.body)
        if op.kind == "stock":
            return self.client.post(f"/products/{op.product_id}/stock", json=op.body)
        return self.client.delete(f"/products/{op.product_id}")
