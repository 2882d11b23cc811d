"""`harness bench resync`: partial and full resync durations against real services, idle
and with events flowing.

A publisher database is seeded with N products (no outbox events), then a RabbitMQ node,
the publisher and an empty consumer start as processes. Measured over HTTP, as an operator
would trigger them:
- idle: a full resync of all N rows into the empty replica (export + replace + catch-up),
  then partial resyncs of k rows the consumer holds wrong;
- under load: while a writer sends `rate` product updates per second to the publisher (so
  events flow through the relay and the broker into the consumers), a full resync of a
  second, empty consumer (a late joiner's copy) and partial resyncs on the first. After the
  load stops, both replicas must match the publisher: a fast resync that loses or repeats
  an event is worth nothing.
The floor in the same run is a raw bulk copy of the same N rows into an empty replica
table (what any full resync must at least pay); the partial resync is held to a cost per
id.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from harness.errors import SetupError
from harness.runtime.base import Component, ServiceSpec
from harness.runtime.ports import free_port
from harness.runtime.processes import ProcessRuntime
from harness.runtime.rabbitmq_node import RabbitMQNode
from harness.waiting import wait_until
from reference_services.bench.integrity import bulk_insert, generate_rows
from reference_services.common.db import make_engines
from reference_services.consumer.models import metadata as consumer_metadata
from reference_services.consumer.models import replica_products
from reference_services.publisher.models import metadata as publisher_metadata
from reference_services.publisher.models import products

FULL_TARGET = "<= 3"
"""Full resync of N rows / raw bulk copy of the same rows: the design's bound."""
PARTIAL_TARGET_MS_PER_ID = 0.1
LOAD_WARM_UP_S = 1.0
"""Seconds of load before a resync under load starts: events are in flight by then."""


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = httpx.post(url, json=body, timeout=900.0)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise SetupError(f"{url}: {exc}") from exc
    data: dict[str, Any] = response.json()
    return data


def _snapshot(component: Component, path: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(component.endpoint().http_url() + path,
                                     timeout=60.0).json()
    return data


def _converge(publisher: Component, consumer: Component, what: str) -> None:
    source = _snapshot(publisher, "/snapshot")
    wait_until(lambda: _snapshot(consumer, "/replica/snapshot")["hash"] == source["hash"],
               60.0, f"{consumer.name}'s replica to match the publisher {what}")


class _Load:
    """Product updates at a fixed rate from a thread, on a schedule: a slow write is
    followed by the next ones at once, so the rate offered holds on average."""

    def __init__(self, publisher_url: str, rows: int, rate: float) -> None:
        self.url = publisher_url
        self.rows = rows
        self.rate = rate
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resync-bench-load",
                                        daemon=True)

    def _run(self) -> None:
        rng = random.Random(2)
        began = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while not self._stop.is_set():
                due = began + (self.sent + self.failed) / self.rate
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                pid = rng.randint(1, self.rows)
                try:
                    response = client.put(f"/products/{pid}",
                                          json={"price": rng.randrange(100, 100_000)})
                    response.raise_for_status()
                    self.sent += 1
                except httpx.HTTPError:
                    self.failed += 1

    @contextmanager
    def running(self) -> Iterator[_Load]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=30)


def _consumer(runtime: ProcessRuntime, name: str, db: Path, broker_url: str,
              publisher: Component) -> Component:
    consumer = runtime.service(ServiceSpec(
        name, "reference_services.consumer",
        ("--name", name, "--db-url", f"sqlite:///{db}", "--broker-url", broker_url,
         "--verify-interval-s", "0", "--publisher-url", publisher.endpoint().http_url()),
        free_port()))
    consumer.start()
    return consumer


def _timed_full(consumer: Component) -> tuple[float, dict[str, Any]]:
    began = time.perf_counter()
    report = _post(consumer.endpoint().http_url() + "/resync", {"full": True})
    return time.perf_counter() - began, report


def _partials(consumer: Component, db: Path, rows: int, sizes: Sequence[int], seed: int,
              progress: Callable[[str], None], label: str) -> list[dict[str, Any]]:
    """For each k: make the consumer hold k rows wrong, then time a partial resync of them."""
    engines = make_engines(f"sqlite:///{db}")
    rng = random.Random(seed)
    results: list[dict[str, Any]] = []
    try:
        for k in sizes:
            ids = rng.sample(range(1, rows + 1), k)
            with engines.writer.begin() as conn:  # the consumer holds k wrong rows
                conn.execute(text("UPDATE replica_products SET price = price + 1 "
                                  "WHERE id = :id"), [{"id": i} for i in ids])
            began = time.perf_counter()
            report = _post(consumer.endpoint().http_url() + "/resync", {"ids": ids})
            seconds = time.perf_counter() - began
            per_id_ms = 1000 * seconds / k
            results.append({"ids": k, "seconds": round(seconds, 4),
                            "changed": report["changed"], "per_id_ms": round(per_id_ms, 4),
                            "target_ms_per_id": PARTIAL_TARGET_MS_PER_ID,
                            "met": per_id_ms <= PARTIAL_TARGET_MS_PER_ID})
            progress(f"partial resync of {k} ids {label}: {seconds:.3f} s "
                     f"({report['changed']} changed)")
    finally:
        engines.writer.dispose()
        engines.reader.dispose()
    return results


def _full_figures(seconds: float, raw_copy_s: float, report: dict[str, Any],
                  rows: int) -> dict[str, Any]:
    return {"seconds": round(seconds, 3), "rows_per_s": round(rows / seconds, 1),
            "over_raw_copy": round(seconds / raw_copy_s, 2),
            "report": {k: report[k] for k in ("fetched", "changed", "removed",
                                              "caught_up_events", "duration_s")}}


def run_resync_bench(work_dir: Path, rows: int = 100_000,
                     partial_sizes: Sequence[int] = (100, 1000), rate: float = 200.0,
                     progress: Callable[[str], None] = print) -> dict[str, Any]:
    work_dir = work_dir.resolve()
    progress(f"seeding the publisher with {rows} products")
    data = generate_rows(random.Random(0), rows)
    publisher_engines = make_engines(f"sqlite:///{work_dir / 'publisher.db'}")
    publisher_metadata.create_all(publisher_engines.writer)
    bulk_insert(publisher_engines, products, data)
    floor_engines = make_engines(f"sqlite:///{work_dir / 'floor.db'}")
    consumer_metadata.create_all(floor_engines.writer)
    began = time.perf_counter()
    bulk_insert(floor_engines, replica_products, data)
    raw_copy_s = time.perf_counter() - began
    for engines in (publisher_engines, floor_engines):
        engines.writer.dispose()
        engines.reader.dispose()

    runtime = ProcessRuntime(work_dir)
    try:
        broker = runtime.rabbitmq("broker")
        assert isinstance(broker, RabbitMQNode)
        broker.start()
        publisher = runtime.service(ServiceSpec(
            "publisher", "reference_services.publisher",
            ("--db-url", f"sqlite:///{work_dir / 'publisher.db'}",
             "--broker-url", broker.amqp_url), free_port()))
        publisher.start()
        consumer = _consumer(runtime, "orders", work_dir / "consumer.db", broker.amqp_url,
                             publisher)
        progress(f"full resync of {rows} rows over HTTP, idle")
        full_s, full = _timed_full(consumer)
        _converge(publisher, consumer, "after the idle full resync")
        partial = _partials(consumer, work_dir / "consumer.db", rows, partial_sizes, 1,
                            progress, "idle")
        _converge(publisher, consumer, "after the idle partial resyncs")

        late = _consumer(runtime, "late", work_dir / "late.db", broker.amqp_url, publisher)
        progress(f"under load ({rate:g} updates/s): full resync of an empty replica, then "
                 "partial resyncs")
        with _Load(publisher.endpoint().http_url(), rows, rate).running() as load:
            time.sleep(LOAD_WARM_UP_S)
            sent_before = load.sent
            loaded_s, loaded = _timed_full(late)
            writes_during_full = load.sent - sent_before
            partial_loaded = _partials(consumer, work_dir / "consumer.db", rows,
                                       partial_sizes, 3, progress, "under load")
        writes, failed = load.sent, load.failed
        _converge(publisher, late, "after the load, resynced under it")
        _converge(publisher, consumer, "after the load")
    finally:
        runtime.close()
    return {
        "bench": "resync",
        "rows": rows,
        "raw_bulk_copy_s": round(raw_copy_s, 3),
        "full_target": FULL_TARGET,
        "partial_target_ms_per_id": PARTIAL_TARGET_MS_PER_ID,
        "idle": {"full": _full_figures(full_s, raw_copy_s, full, rows), "partial": partial},
        "under_load": {"rate": rate, "writes": writes, "failed_writes": failed,
                       "writes_during_full": writes_during_full,
                       "full": _full_figures(loaded_s, raw_copy_s, loaded, rows),
                       "partial": partial_loaded},
    }
