"""RabbitMQ topology shared by the reference publisher and consumer.

A topic exchange carries every product event with routing key `products.<aggregate_id>`;
each consumer owns a durable queue bound with `products.#`, so a second consumer gets its
own copy, and a per-consumer dead-letter queue receives what the consumer cannot process.
"""

from __future__ import annotations

import pika

from harness.contract.naming import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_BINDING,
    EXCHANGE,
    dead_letter_queue_name,
    queue_name,
    routing_key,
)

__all__ = ["DEAD_LETTER_EXCHANGE", "EXCHANGE", "dead_letter_queue_name", "queue_name",
           "routing_key"]



def connection_parameters(url: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    # Fail fast on a dead link so the reconnect loop, not a hung socket, handles outages.
    params.socket_timeout = 5
    params.blocked_connection_timeout = 10
    params.connection_attempts = 1
    params.heartbeat = 10
    return params


def declare_exchange(channel: pika.adapters.blocking_connection.BlockingChannel) -> None:
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)


def declare_consumer_queues(
    channel: pika.adapters.blocking_connection.BlockingChannel, consumer_name: str
) -> str:
    declare_exchange(channel)
    channel.exchange_declare(DEAD_LETTER_EXCHANGE, exchange_type="direct", durable=True)
    dlq = dead_letter_queue_name(consumer_name)
    channel.queue_declare(dlq, durable=True)
    channel.queue_bind(dlq, DEAD_LETTER_EXCHANGE, routing_key=consumer_name)
    queue = queue_name(consumer_name)
    channel.queue_declare(queue, durable=True)
    channel.queue_bind(queue, EXCHANGE, routing_key=EVENTS_BINDING)
    return queue
