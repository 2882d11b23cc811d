"""Kafka settings shared by the reference publisher and consumer.

A broker URL `kafka://host:port[,host:port...]` selects the Kafka path (anything else is
RabbitMQ). Every product event goes to one topic, keyed by its aggregate id, so all events
of one product land on one partition, in order; a consumer's dead letters go to the topic
`<consumer>.dead-letters`. Timeouts are short on purpose: with librdkafka's defaults a
group join can take minutes and a reconnect backs off to 10 s, which would hide every
recovery figure a scenario measures.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any
from urllib.parse import urlsplit

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # documented path
    AdminClient,
    NewTopic,
)

from harness.contract.naming import EVENTS_PARTITIONS, EVENTS_TOPIC, dead_letter_queue_name

__all__ = ["EVENTS_PARTITIONS", "EVENTS_TOPIC", "KafkaUnavailable", "bootstrap_servers",
           "consumer_config", "dead_letter_topic", "ensure_topic", "is_kafka_url",
           "message_key", "producer_config"]

SCHEME = "kafka"

# After an outage a client reconnects within its backoff (librdkafka adds -25%..+50%
# jitter): with a 1 s cap the first record after a heal waited ~0.6 s on average, longer
# than draining the whole backlog. A refused connect every 100 ms costs next to nothing.
_RECONNECT = {"reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 100}


class KafkaUnavailable(RuntimeError):
    """The broker did not answer an administrative request in time."""


def is_kafka_url(url: str) -> bool:
    return urlsplit(url).scheme == SCHEME


def bootstrap_servers(url: str) -> str:
    """`kafka://h1:p1,h2:p2` -> `h1:p1,h2:p2` (librdkafka's bootstrap.servers)."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not parts.netloc:
        raise ValueError(f"not a Kafka broker URL: {url!r} (expected kafka://host:port)")
    return parts.netloc


def message_key(aggregate_id: str) -> str:
    """The key every event of one aggregate shares: it picks the partition, hence order."""
    return aggregate_id


def dead_letter_topic(consumer_name: str) -> str:
    return dead_letter_queue_name(consumer_name)


def producer_config(bootstrap: str, client_id: str, timeout_s: float) -> dict[str, Any]:
    """An idempotent producer that waits for every in-sync replica: a retried send never
    duplicates or reorders a record, and a delivery report means the record is stored.
    A record not delivered within `timeout_s` is reported failed, not retried forever."""
    return {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 1,
        "message.timeout.ms": int(timeout_s * 1000),
        # A produce request lost with its connection is sent again this soon after the
        # reconnection (librdkafka's defaults back off from 100 ms to 1 s).
        "retry.backoff.ms": 20,
        "retry.backoff.max.ms": 100,
        **_RECONNECT,
    }


def consumer_config(bootstrap: str, group_id: str, offset_reset: str) -> dict[str, Any]:
    """Offsets are committed only when the application says so."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "client.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": offset_reset,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "max.poll.interval.ms": 10000,
        # Tansu on S3 storage serves every fetch with object-store requests and holds it
        # this long even when records arrive meanwhile: 10 ms floods the store with empty
        # fetches (seconds of lag at 200 events/s); much longer adds its own lag.
        "fetch.wait.max.ms": 50,
        # A vanished or re-partitioned topic is noticed within seconds, not minutes.
        "topic.metadata.refresh.interval.ms": 2000,
        **_RECONNECT,
    }


def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 5.0) -> None:
    """Create `topic` unless it exists (as RabbitMQ clients declare their queues).
    Replication factor 1: the harness runs a single broker."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **_RECONNECT})
    future = admin.create_topics([NewTopic(topic, num_partitions=partitions,
                                           replication_factor=1)],
                                 request_timeout=timeout_s)[topic]
    try:
        future.result(timeout=timeout_s + 1)
    except KafkaException as exc:
        error = exc.args[0]
        if not isinstance(error, KafkaError) or error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise KafkaUnavailable(f"cannot create topic {topic} on {bootstrap}: {exc}") from exc
    except concurrent.futures.TimeoutError as exc:
        raise KafkaUnavailable(f"no answer from {bootstrap} within {timeout_s}s while "
                               f"creating topic {topic}") from exc
