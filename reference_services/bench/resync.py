"""`harness bench resync`: partial and full resync durations against real services.

A publisher database is seeded with N products (no outbox events), then a RabbitMQ node,
the publisher and an empty consumer start as processes. Measured over HTTP, as an operator
would trigger them: a full resync of all N rows (export + replace + catch-up), and partial
resyncs of k rows the consumer holds wrong. The floor in the same run is a raw bulk copy of
the same N rows into an empty replica table (what any resync must at least pay).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
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


def run_resync_bench(work_dir: Path, rows: int = 100_000,
                     partial_sizes: Sequence[int] = (100, 1000),
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
        consumer = runtime.service(ServiceSpec(
            "consumer", "reference_services.consumer",
            ("--db-url", f"sqlite:///{work_dir / 'consumer.db'}",
             "--broker-url", broker.amqp_url, "--verify-interval-s", "0",
             "--publisher-url", publisher.endpoint().http_url()), free_port()))
        consumer.start()
        resync_url = consumer.endpoint().http_url() + "/resync"
        progress(f"full resync of {rows} rows over HTTP")
        began = time.perf_counter()
        full = _post(resync_url, {"full": True})
        full_s = time.perf_counter() - began
        source = _snapshot(publisher, "/snapshot")
        wait_until(lambda: _snapshot(consumer, "/replica/snapshot")["hash"] == source["hash"],
                   30.0, "the replica to match after the full resync")
        partial: list[dict[str, Any]] = []
        consumer_engines = make_engines(f"sqlite:///{work_dir / 'consumer.db'}")
        rng = random.Random(1)
        for k in partial_sizes:
            ids = rng.sample(range(1, rows + 1), k)
            with consumer_engines.writer.begin() as conn:  # the consumer holds k wrong rows
                conn.execute(text("UPDATE replica_products SET price = price + 1 "
                                  "WHERE id = :id"), [{"id": i} for i in ids])
            began = time.perf_counter()
            report = _post(resync_url, {"ids": ids})
            seconds = time.perf_counter() - began
            partial.append({"ids": k, "seconds": round(seconds, 3), "changed": report["changed"],
                            "per_id_ms": round(1000 * seconds / k, 3)})
            progress(f"partial resync of {k} ids: {seconds:.3f} s ({report['changed']} changed)")
    finally:
        runtime.close()
    return {
        "rows": rows,
        "raw_bulk_copy_s": round(raw_copy_s, 3),
        "full_resync_s": round(full_s, 3),
        "full_resync_rows_per_s": round(rows / full_s, 1),
        "full_over_raw_copy": round(full_s / raw_copy_s, 2),
        "full_report": {k: full[k] for k in ("fetched", "changed", "removed",
                                             "caught_up_events", "duration_s")},
        "partial": partial,
    }
