"""Unit tests for harness.workload.driver against a fake publisher (httpx.MockTransport):
the load is open loop (writes keep their schedule when answers are slow, latency counts
from the intended send time), concurrency caps the writes in flight and a full cap is
recorded, the operations stay a function of the seed and the answers whatever the timing,
and failed writes are recorded, never fatal."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from harness.history import History, read_history
from harness.metrics import load_rates
from harness.workload import WorkloadDriver, WorkloadGenerator, WorkloadSpec

SPEC = WorkloadSpec(rate_per_s=1000, duration_s=0.2, initial_products=10)


class FakePublisher:
    """Answers like the publisher, except that every write to an existing id succeeds and
    a created product's id comes from its name: answers do not depend on the order the
    requests arrive in. Records how many were in flight."""

    def __init__(self, latency_s: tuple[float, float] = (0.0, 0.0), seed: int = 0,
                 fail: dict[int, Exception] | None = None,
                 stall_s: dict[int, float] | None = None) -> None:
        self.latency_s = latency_s
        self.rng = random.Random(seed)
        self.fail = fail or {}
        self.stall_s = stall_s or {}  # request number -> how long that one takes
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            number = self.requests
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            delay = self.stall_s.get(number, self.rng.uniform(*self.latency_s))
        try:
            time.sleep(delay)
            if number in self.fail:
                raise self.fail[number]
            return self._answer(request)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        body: dict[str, Any] = json.loads(request.content) if request.content else {}
        with self.lock:
            if request.method == "POST" and parts == ["products"]:
                pid = int(body["name"].split()[-1]) + 1
                return httpx.Response(201, json={"id": pid, **body, "event_id": f"e{pid}"})
            pid = int(parts[1])
            return httpx.Response(200, json={"id": pid, "event_id": f"e{pid}-{body}"})


def run_driver(tmp_path: Path, publisher: FakePublisher, spec: WorkloadSpec = SPEC,
               seed: int = 3) -> list[dict[str, Any]]:
    history = History(tmp_path / "history.jsonl")
    generator = WorkloadGenerator(spec, random.Random(seed))
    driver = WorkloadDriver(generator, "http://publisher.test", history,
                            transport=httpx.MockTransport(publisher.handle))
    driver.start()
    driver.wait(timeout_s=30)
    history.close()
    return [r for r in read_history(history.path) if r["kind"] == "op"]


def issued(ops: list[dict[str, Any]]) -> list[tuple[int, str, Any]]:
    return sorted((op["index"], op["op"], op["product_id"]) for op in ops)


def test_concurrency_bounds_the_writes_in_flight(tmp_path: Path) -> None:
    spec = WorkloadSpec(rate_per_s=1000, duration_s=0.2, initial_products=10, concurrency=4)
    publisher = FakePublisher(latency_s=(0.01, 0.02))
    ops = run_driver(tmp_path, publisher, spec)
    assert len(ops) == spec.max_ops
    assert publisher.max_in_flight == 4


def test_one_at_a_time_with_concurrency_1(tmp_path: Path) -> None:
    spec = WorkloadSpec(rate_per_s=1000, duration_s=0.05, initial_products=10, concurrency=1)
    publisher = FakePublisher(latency_s=(0.002, 0.004))
    run_driver(tmp_path, publisher, spec)
    assert publisher.max_in_flight == 1


# Writes take 4 times their interval: one at a time offers at most a quarter of the rate.
SLOW = (0.02, 0.02)
PACED = WorkloadSpec(rate_per_s=200, duration_s=0.5, initial_products=10)


def test_the_offered_rate_holds_when_writes_take_longer_than_their_interval(
        tmp_path: Path) -> None:
    publisher = FakePublisher(latency_s=SLOW)
    ops = run_driver(tmp_path, publisher, PACED)
    rates = load_rates(ops)
    assert rates is not None
    assert len(ops) == PACED.max_ops and all(op["ok"] for op in ops)
    assert round(rates.offered_per_s) == 200
    assert rates.achieved_per_s >= 0.85 * rates.offered_per_s
    assert 1 < publisher.max_in_flight <= PACED.concurrency
    assert rates.behind_schedule == 0 and not any(op["cap_full"] for op in ops)
    # Latency counts from the intended send time, so it is at least the write's own time.
    assert min(op["latency_ms"] for op in ops) >= 20


def test_a_full_cap_is_recorded_as_the_schedule_slipping(tmp_path: Path) -> None:
    closed = WorkloadSpec(rate_per_s=200, duration_s=0.5, initial_products=10,
                          concurrency=1)
    ops = run_driver(tmp_path, FakePublisher(latency_s=SLOW), closed)
    rates = load_rates(ops)
    assert rates is not None
    assert rates.achieved_per_s < 0.3 * rates.offered_per_s
    # Every write after the first found the one before it unanswered at its due time.
    assert rates.behind_schedule == len(ops) - 1
    late = [op for op in ops if op["index"] > 0]
    assert all(op["cap_full"] and op["sent_late_ms"] > 0 for op in late)
    assert rates.max_send_delay_ms == max(op["sent_late_ms"] for op in ops)


def test_a_stall_counts_in_the_latency_of_the_writes_held_behind_it(tmp_path: Path) -> None:
    spec = WorkloadSpec(rate_per_s=200, duration_s=0.2, initial_products=10, concurrency=2)
    # The 6th request takes 0.3 s: with 2 in flight, the writes due meanwhile wait for it.
    ops = run_driver(tmp_path, FakePublisher(stall_s={5: 0.3}), spec)
    held = [op for op in ops if op["cap_full"]]
    assert held and max(op["sent_late_ms"] for op in held) >= 200
    # Measured from when each was due: the wait for a slot is in the latency, not hidden.
    assert all(op["latency_ms"] >= op["sent_late_ms"] for op in ops)
    assert all(abs(op["due_s"] - op["index"] / 200) < 1e-3 for op in ops)
    assert len(ops) == spec.max_ops


def test_operations_depend_on_seed_and_answers_not_on_timing(tmp_path: Path) -> None:
    spec = WorkloadSpec(rate_per_s=2000, duration_s=0.1, initial_products=10, concurrency=6)
    fast = run_driver(tmp_path / "fast", FakePublisher(), spec)
    slow = run_driver(tmp_path / "slow", FakePublisher(latency_s=(0.0, 0.01), seed=9), spec)
    other_seed = run_driver(tmp_path / "other", FakePublisher(), spec, seed=4)
    # Answers arrived in a different order (random latencies), yet the same writes went out.
    assert [op["index"] for op in slow] != sorted(op["index"] for op in slow)
    assert issued(fast) == issued(slow)
    assert issued(fast) != issued(other_seed)


def test_failed_writes_are_recorded_and_the_load_goes_on(tmp_path: Path) -> None:
    refused = httpx.ConnectError("connection refused")
    cut = httpx.RemoteProtocolError("server disconnected without sending a response")
    publisher = FakePublisher(fail={12: refused, 13: cut, 14: httpx.ReadTimeout("slow")})
    ops = run_driver(tmp_path, publisher)
    assert len(ops) == SPEC.max_ops
    failed = {op["index"]: op for op in ops if not op["ok"]}
    assert set(failed) == {12, 13, 14}
    assert failed[12]["indeterminate"] is False  # never sent: cannot have committed
    assert failed[13]["indeterminate"] is True
    assert failed[14]["indeterminate"] is True
    assert "RemoteProtocolError" in failed[13]["error"]
    assert max(op["index"] for op in ops if op["ok"]) > 14
