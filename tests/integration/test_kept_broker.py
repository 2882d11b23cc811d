"""A RabbitMQ broker kept across runs (harness explore): each run gets a virtual host of
its own, sees nothing of another's, and a broker a run killed serves the next one."""

from __future__ import annotations

from pathlib import Path

import pika
import pika.exceptions
import pytest

from harness.brokers.kept import KeptBroker
from harness.brokers.rabbitmq import RabbitMQAdapter
from harness.brokers.registry import broker_plugin
from harness.contract import naming
from harness.errors import BrokerError
from harness.runtime.registry import PROCESSES

pytestmark = [pytest.mark.integration]

CONSUMER = "orders"


def _declare_and_publish(url: str, bodies: int) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.exchange_declare(naming.EXCHANGE, exchange_type="topic", durable=True)
        queue = naming.queue_name(CONSUMER)
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, naming.EXCHANGE, routing_key=naming.EVENTS_BINDING)
        channel.confirm_delivery()
        for number in range(bodies):
            channel.basic_publish(naming.EXCHANGE, naming.routing_key(str(number)), b"{}")
    finally:
        connection.close()


def test_runs_on_a_kept_broker_see_only_their_own_namespace(leak_check: Path) -> None:
    kept = KeptBroker(broker_plugin("rabbitmq"), PROCESSES, leak_check / "broker",
                      "test-kept")
    events: list[str] = []
    try:
        kept.start()
        first = kept.lend(lambda what, data: events.append(f"{what} {data.get('component')}"))
        adapter = first.started.adapter
        assert isinstance(adapter, RabbitMQAdapter)
        _declare_and_publish(adapter.url, 5)
        assert adapter.consumer_queue(CONSUMER).ready == 5
        # Counters read with rabbitmqctl are of this virtual host's queue too.
        assert adapter.queue_counters(CONSUMER).ready == 5
        # A service is given the same namespace at whatever endpoint its link has.
        assert first.service_url(first.started.component.endpoint()) == adapter.url
        # A fault on the broker acts on the kept broker, and its run hears of it.
        broker = first.started.component
        broker.kill()
        broker.start()
        assert any(event.startswith("start broker") for event in events), events
        first.close()
        events.clear()

        second = kept.lend(lambda what, data: events.append(what))
        assert second.namespace != first.namespace
        scoped = second.started.adapter
        with pytest.raises(BrokerError):
            scoped.consumer_queue(CONSUMER)  # the first run's queue is not here
        _declare_and_publish(scoped.url, 2)
        assert scoped.consumer_queue(CONSUMER).ready == 2
        second.close()
        kept.await_deletions()
        # The closed runs' hosts are gone, with their queues.
        with pytest.raises(pika.exceptions.AMQPError):
            pika.BlockingConnection(pika.URLParameters(adapter.url)).close()
    finally:
        kept.close()
    # leak_check: the broker and its epmd stopped with the KeptBroker.
