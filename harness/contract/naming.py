"""Broker names every party agrees on: where events go and where each consumer reads them.

A topic exchange carries every product event with routing key `products.<aggregate_id>`;
each consumer owns a durable queue bound with `products.#`, and a dead-letter queue that
receives, with the reason in a header, what it could not process.
"""

from __future__ import annotations

EXCHANGE = "product-events"
DEAD_LETTER_EXCHANGE = "product-events.dlx"
EVENTS_BINDING = "products.#"
# On Kafka: the topic carrying every product event, keyed by aggregate id (one partition
# per aggregate keeps its order); a consumer's dead letters go to the topic named like
# its dead-letter queue.
EVENTS_TOPIC = "product-events"
# Its partitions, whoever creates it first (the harness's tap, the relay or a consumer):
# enough for a group of several instances to share the work.
EVENTS_PARTITIONS = 4
# Header carrying a dead letter's reason on the broker-side dead-letter queue.
REASON_HEADER = "x-reason"


def routing_key(aggregate_id: str) -> str:
    return f"products.{aggregate_id}"


def queue_name(consumer_name: str) -> str:
    return f"{consumer_name}.product-events"


def consumer_group(consumer_name: str) -> str:
    """On Kafka: the consumer group every instance of that consumer joins."""
    return consumer_name


def dead_letter_queue_name(consumer_name: str) -> str:
    return f"{consumer_name}.dead-letters"


def held_queue_name(consumer_name: str) -> str:
    """Where events for a diverted consumer wait until they are released (harness-owned)."""
    return f"{consumer_name}.held"


def tap_queue_name(run_tag: str) -> str:
    """The harness's own subscription to the event stream (its broker tap)."""
    return f"harness-tap.{run_tag}"
