"""The broker tap and the broker's counters on a private RabbitMQ node: the tap records every
event published to the exchange, also across a broker kill and restart, stops promptly,
and leaves other consumers' queues alone; rabbitmqctl reads unacknowledged counts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from harness.brokers.rabbitmq import RabbitCtl, RabbitMQAdapter
from harness.contract import envelope as env
from harness.contract import naming
from harness.runtime.processes import ProcessRuntime
from harness.runtime.rabbitmq_node import RabbitMQNode
from tests.integration.conftest import processes_started_under

pytestmark = [pytest.mark.integration]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RabbitMQNode]:
    runtime = ProcessRuntime(tmp_path)
    try:
        broker = runtime.rabbitmq("broker")
        broker.start()
        yield broker
    finally:
        runtime.close()
    leaked = processes_started_under(tmp_path)
    assert not leaked, f"processes left running after the test: {leaked}"


def publish(url: str, first: int, count: int) -> list[str]:
    """Persistent events on the exchange, confirmed one by one; their event ids."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare(naming.EXCHANGE, exchange_type="topic", durable=True)
    channel.confirm_delivery()
    ids = []
    for n in range(first, first + count):
        event = env.Envelope(f"e{n}", env.STOCK_ADJUSTED, "7", n, n, 1.0, 1,
                             {"delta": 1, "stock": n})
        channel.basic_publish(naming.EXCHANGE, naming.routing_key("7"), event.encode(),
                              pika.BasicProperties(delivery_mode=2))
        ids.append(event.event_id)
    connection.close()
    return ids


def test_the_tap_records_every_event_across_a_broker_kill(node: RabbitMQNode) -> None:
    adapter = RabbitMQAdapter(node.amqp_url)
    tap = adapter.open_tap("kill")
    tap.start()
    try:
        sent = publish(node.amqp_url, 1, 200)
        node.kill()
        time.sleep(1.0)  # the tap's reconnects fail meanwhile
        node.start()
        sent += publish(node.amqp_url, 201, 200)
        assert tap.drain(30.0)
        records = tap.records()
    finally:
        began = time.monotonic()
        tap.stop()
        stopped_in = time.monotonic() - began
        adapter.close()
    assert {r["event_id"] for r in records} == set(sent)
    status = tap.status()
    assert status["complete"] and status["reconnects"] >= 1
    assert stopped_in < 5.0
    assert all(r["digest"] and r["unparseable"] is None for r in records)


def test_the_tap_stops_promptly_while_the_broker_is_frozen(node: RabbitMQNode) -> None:
    adapter = RabbitMQAdapter(node.amqp_url)
    tap = adapter.open_tap("frozen")
    tap.start()
    node.pause()
    try:
        began = time.monotonic()
        tap.stop()
        assert time.monotonic() - began < 5.0
    finally:
        node.resume()
        adapter.close()


def test_queue_counters_read_unacknowledged_deliveries(node: RabbitMQNode) -> None:
    ctl = RabbitCtl(node.nodename, node.rabbitmqctl)
    adapter = RabbitMQAdapter(node.amqp_url, ctl)
    connection = pika.BlockingConnection(pika.URLParameters(node.amqp_url))
    channel = connection.channel()
    queue = naming.queue_name("counted")
    channel.exchange_declare(naming.EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, naming.EXCHANGE, routing_key=naming.EVENTS_BINDING)
    try:
        publish(node.amqp_url, 1, 10)
        channel.basic_qos(prefetch_count=3)
        channel.basic_consume(queue, lambda *_: None)  # never acknowledges
        connection.process_data_events(time_limit=0.5)
        counters = adapter.queue_counters("counted")
        assert (counters.name, counters.ready, counters.unacked, counters.consumers) == \
            (queue, 7, 3, 1)
        assert counters.read_with == "rabbitmqctl list_queues"
    finally:
        connection.close()
        adapter.close()
