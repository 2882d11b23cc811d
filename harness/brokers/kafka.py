"""Kafka adapter (confluent-kafka), written against Tansu and the Kafka protocol.

One topic (naming.EVENTS_TOPIC) carries every event, keyed by aggregate id; each consumer
is a consumer group (naming.consumer_group) reading all of it, so "what waits for a
consumer" is its group's lag: for each partition, the log's end minus the group's
committed offset. The reference consumer keeps its true positions in its own database and
commits them to Kafka only for monitoring; `lag_from` takes positions read from wherever
they are kept.

What Kafka cannot do that RabbitMQ can, and what it means for faults:
- nothing reaches one consumer alone: raw bytes produced to the topic reach every group
  (every consumer and the harness's tap), so accounting of injected messages is per
  consumer, and each consumer sees each of them;
- there is no hold-and-release of a consumer's events (divert/release raise BrokerError);
  what reordering looks like on Kafka is older versions of events produced again after
  newer ones (the `redeliver_stale` fault);
- losing a consumer's backlog means the broker losing records from the shared log
  (see `purge`), which every reader of the log loses alike.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # .admin re-exports it only implicitly

from harness.brokers import capabilities, kafka_client
from harness.brokers.base import BrokerAdapter, Discarded, QueueCounters, QueueState, ReleaseOrder
from harness.brokers.kafka_client import LogBounds, client_config, producer_config
from harness.brokers.kafka_tap import KafkaTap
from harness.contract import envelope
from harness.contract import naming as topology
from harness.errors import BrokerError
from harness.observers.tap import BrokerTap
from harness.waiting import wait_until

REQUEST_TIMEOUT_S = 5.0
# Before the broker loses records, the harness's taps read what they have not read yet:
# the witness must not be a victim of the fault it observes.
TAP_CATCH_UP_S = 10.0
# Group states in which at least one member is present.
_ACTIVE_GROUP_STATES = frozenset({ConsumerGroupState.STABLE,
                                  ConsumerGroupState.PREPARING_REBALANCING,
                                  ConsumerGroupState.COMPLETING_REBALANCING})


class LogTruncator(Protocol):
    """Makes the broker lose the records of a topic before the given offset of each
    partition, keeping the topic (e.g. TansuNode on S3 storage; Apache Kafka would use
    DeleteRecords)."""

    def truncate_topic(self, topic: str, before: Mapping[int, int]) -> int: ...


def lag(bounds: Mapping[int, LogBounds], offsets: Mapping[int, int]) -> int:
    """Records between each partition's position (the next offset to read) and its log
    end, summed. A partition without a position, or with one before the log start (records
    the broker no longer has), is read from its log start; a position past the end (a log
    that was cut) counts nothing. Tansu states log start 0 in the fetch answers these
    bounds come from, even after losing records, so there a cut log counts the lost
    offsets as waiting until the reader moves past them."""
    total = 0
    for partition, bound in bounds.items():
        position = max(offsets.get(partition, bound.start), bound.start)
        total += max(bound.end - position, 0)
    return total


def _not_on_kafka(capability: str, instead: str) -> BrokerError:
    return BrokerError(f"Kafka cannot {capability}; {instead}")


class KafkaAdapter(BrokerAdapter):
    kind = "kafka"
    # Only what its faults' checks judge correctly on Kafka. INJECT_RAW produces to the
    # shared topic (raw_reaches_every_reader): every group reads the bytes, the tap
    # included, and the checks leave out of the tap's view what the faults say they
    # injected; DEAD_LETTER is the consumer's `<consumer>.dead-letters` topic. Not offered:
    # HOLD_AND_RELEASE, as Kafka cannot hold a group's records back and hand them over
    # later in another order (stale re-delivery, `redeliver_stale`, stands in for it).
    capabilities = frozenset({capabilities.LOSE_DATA, capabilities.CONSUMER_GROUPS,
                              capabilities.INJECT_RAW, capabilities.DEAD_LETTER})
    raw_reaches_every_reader = True

    def __init__(self, bootstrap: str, truncator: LogTruncator | None = None,
                 topic: str = topology.EVENTS_TOPIC,
                 partitions: int = topology.EVENTS_PARTITIONS) -> None:
        """`bootstrap`: host:port of the broker. `truncator`, when given, can make the
        broker lose records (purge, delete_queue)."""
        self.bootstrap = bootstrap
        self.truncator = truncator
        self.topic = topic
        self.partitions = partitions
        self._admin_client: AdminClient | None = None
        self._taps: list[KafkaTap] = []

    @property
    def _admin(self) -> AdminClient:
        # Created on first use, dropped by close() (which closes its connections).
        if self._admin_client is None:
            self._admin_client = AdminClient(client_config(self.bootstrap))
        return self._admin_client

    # -- topics and offsets ---------------------------------------------------------------
    def _ask(self, request: Callable[[AdminClient], Any], what: str) -> Any:
        """The answer to `request(admin)` (a future). An admin client that was connected
        when the broker restarted times out on every group request from then on (seen
        with librdkafka 2.16 against Tansu), so a request that fails is asked once more
        of a new client before it counts as failed."""
        try:
            return request(self._admin).result(timeout=REQUEST_TIMEOUT_S + 1)
        except (KafkaException, TimeoutError):
            self._admin_client = None
        try:
            return request(self._admin).result(timeout=REQUEST_TIMEOUT_S + 1)
        except (KafkaException, TimeoutError) as exc:
            self._admin_client = None
            raise BrokerError(f"cannot {what} on Kafka at {self.bootstrap}: "
                              f"{type(exc).__name__}: {exc}") from exc

    def topic_partitions(self, topic: str) -> list[int]:
        """The topic's partitions; [] when it does not exist. Lists every topic, since
        asking for one by name may create it (Tansu creates topics on demand)."""
        try:
            metadata = self._admin.list_topics(timeout=REQUEST_TIMEOUT_S)
        except KafkaException as exc:
            raise BrokerError(f"cannot list topics on Kafka at {self.bootstrap}: "
                              f"{exc}") from exc
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return []
        return sorted(found.partitions)

    def ensure_topic(self, topic: str, partitions: int) -> None:
        """Create `topic` unless it exists (replication 1: one broker)."""
        future = self._admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
            request_timeout=REQUEST_TIMEOUT_S)[topic]
        try:
            future.result(timeout=REQUEST_TIMEOUT_S + 1)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return
            raise BrokerError(f"cannot create topic {topic} on Kafka at {self.bootstrap}: "
                              f"{exc}") from exc
        except TimeoutError as exc:
            raise BrokerError(f"no answer from Kafka at {self.bootstrap} while creating "
                              f"topic {topic}") from exc

    def log_bounds(self, topic: str) -> dict[int, LogBounds]:
        """Per partition, where its log starts and ends; {} for a missing topic."""
        return kafka_client.log_bounds(self.bootstrap, topic, self.topic_partitions(topic),
                                       REQUEST_TIMEOUT_S)

    def committed_offsets(self, consumer_name: str) -> dict[int, int]:
        """The offsets the consumer's group committed on the events topic (partitions it
        never committed are left out)."""
        group = topology.consumer_group(consumer_name)
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(self.topic, p) for p in self.topic_partitions(self.topic)])
        answer = self._ask(lambda admin: admin.list_consumer_group_offsets(
            [request], request_timeout=REQUEST_TIMEOUT_S)[group],
            f"read the offsets of group {group}")
        return {tp.partition: tp.offset for tp in answer.topic_partitions if tp.offset >= 0}

    def lag_from(self, offsets: Mapping[int, int]) -> int:
        """Records of the events topic past these positions (next offset to read, per
        partition, however a consumer stores them)."""
        return lag(self.log_bounds(self.topic), offsets)

    def _members(self, consumer_name: str) -> int:
        group = topology.consumer_group(consumer_name)
        description = self._ask(lambda admin: admin.describe_consumer_groups(
            [group], request_timeout=REQUEST_TIMEOUT_S)[group], f"describe group {group}")
        # Tansu reports a group's state but not its members: at least one when active.
        active = 1 if description.state in _ACTIVE_GROUP_STATES else 0
        return max(len(description.members), active)

    # -- BrokerAdapter ------------------------------------------------------------------
    def wait_ready(self, timeout_s: float) -> None:
        wait_until(lambda: self._admin.list_topics(timeout=1.0), timeout_s,
                   f"Kafka at {self.bootstrap} to answer a metadata request")

    def consumer_queue(self, consumer_name: str) -> QueueState:
        return QueueState(ready=self.lag_from(self.committed_offsets(consumer_name)),
                          consumers=self._members(consumer_name))

    def queue_counters(self, consumer_name: str) -> QueueCounters:
        began = time.monotonic()
        state = self.consumer_queue(consumer_name)
        return QueueCounters(topology.consumer_group(consumer_name), state.ready, None,
                             state.consumers,
                             "group committed offsets against fetch high watermarks",
                             round(time.monotonic() - began, 3))

    def purge(self, consumer_name: str) -> int:
        """The broker loses every record of the events topic that the harness's taps have
        read (the topic, its offsets and every group's positions stay; each partition's log
        then starts after them): what waited for the consumer is gone, and so is what
        waited for every other reader. Returns how many records the consumer lost (its
        committed offsets are where its backlog starts).

        Cut where the taps have read, not at the log's end: under load the end moves on,
        and a record lost before the witness read it would make the witness a victim of
        the fault it observes. The taps get TAP_CATCH_UP_S to reach the end seen first.

        Not by deleting and recreating the topic: librdkafka 2.16 (confluent-kafka's)
        crashes the whole process (SIGSEGV in its metadata cache) when a topic is deleted
        under a consumer that fetches it from Tansu, and the harness's own tap is such a
        consumer.
        """
        if self.truncator is None:
            raise BrokerError(f"this Kafka broker ({self.bootstrap}) cannot lose records on "
                              "demand: run Tansu on S3 storage, or restart a memory-backed "
                              "broker to lose everything")
        bounds = self.log_bounds(self.topic)
        committed = self.committed_offsets(consumer_name)
        cut = self._taps_reached({p: b.end for p, b in bounds.items()}, TAP_CATCH_UP_S)
        self.truncator.truncate_topic(self.topic, cut)
        return sum(max(cut.get(p, b.start) - max(committed.get(p, b.start), b.start), 0)
                   for p, b in bounds.items())

    def _taps_reached(self, ends: Mapping[int, int], timeout_s: float) -> dict[int, int]:
        """Per partition, the offset every tap has read up to, once they all reached `ends`
        or `timeout_s` passed (a tap still short of it then is cut where it is, and the
        records it had not read are kept). Without taps: `ends`."""
        deadline = time.monotonic() + timeout_s
        while True:
            reached = {p: min([end, *(tap.read_upto().get(p, 0) for tap in self._taps)])
                       for p, end in ends.items()}
            if reached == dict(ends) or time.monotonic() >= deadline:
                return reached
            time.sleep(0.05)

    def delete_queue(self, consumer_name: str) -> int:
        """As purge, and the consumer's group loses its committed offsets too (the nearest
        Kafka has to losing the queue). Fails while the group has members."""
        lost = self.purge(consumer_name)
        group = topology.consumer_group(consumer_name)
        futures = self._admin.delete_consumer_groups([group], request_timeout=REQUEST_TIMEOUT_S)
        try:
            futures[group].result(timeout=REQUEST_TIMEOUT_S + 1)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not (isinstance(error, KafkaError)
                    and error.code() == KafkaError.GROUP_ID_NOT_FOUND):
                raise BrokerError(f"cannot delete group {group} on Kafka at "
                                  f"{self.bootstrap}: {exc}") from exc
        except TimeoutError as exc:
            raise BrokerError(f"no answer from Kafka at {self.bootstrap} while deleting "
                              f"group {group}") from exc
        return lost

    def publish_raw(self, consumer_name: str, bodies: Sequence[bytes]) -> None:
        """Produce these exact bytes to the events topic and wait until every one is stored.

        Every group reads them, not only `consumer_name`'s: each consumer (and the tap)
        sees each body once more. A body that is an event envelope is keyed by its
        aggregate id, as the relay keys it, so it lands on the partition of that
        aggregate's other events and keeps its place in their order; any other body gets
        no key, so a partition of the client's choosing. Order holds per partition only.
        """
        # A producer per call: an idempotent producer's identity dies with the state of a
        # broker that restarts on memory storage, and Tansu then refuses it for good
        # (UNKNOWN_PRODUCER_ID on every retry, until the records time out).
        producer = Producer(producer_config(self.bootstrap))
        failures: list[str] = []

        def delivered(error: KafkaError | None, _message: Any) -> None:
            if error is not None:
                failures.append(f"{error.name()}: {error.str()}")

        try:
            for body in bodies:
                producer.produce(self.topic, value=body, key=_key(body), on_delivery=delivered)
                producer.poll(0)
            unsent = producer.flush(REQUEST_TIMEOUT_S)
        except (KafkaException, BufferError) as exc:
            raise BrokerError(f"cannot produce {len(bodies)} raw messages to {self.topic} at "
                              f"{self.bootstrap}: {exc}") from exc
        if failures or unsent:
            raise BrokerError(f"producing {len(bodies)} raw messages to {self.topic} at "
                              f"{self.bootstrap}: {len(failures)} refused "
                              f"({'; '.join(failures[:3])}), {unsent} unconfirmed after "
                              f"{REQUEST_TIMEOUT_S:.0f}s")

    def divert(self, consumer_name: str) -> None:
        raise _not_on_kafka(
            f"hold back events for {consumer_name} and release them later (divert)",
            "on Kafka reordering means producing older versions of events again after "
            "newer ones")

    def release(self, consumer_name: str, order: ReleaseOrder,
                rng: random.Random | None = None) -> int:
        raise _not_on_kafka(f"release held events to {consumer_name} (release)",
                            "nothing is ever held back (see divert)")

    def release_discarding(self, consumer_name: str,
                           discard: Callable[[bytes], bool]) -> Discarded:
        raise _not_on_kafka(f"release held events to {consumer_name} (release_discarding)",
                            "nothing is ever held back (see divert)")

    def dead_letter_depth(self, consumer_name: str) -> int:
        """Records in the consumer's dead-letter topic; 0 while that topic does not exist."""
        topic = topology.dead_letter_queue_name(consumer_name)
        return lag(self.log_bounds(topic), {})

    def open_tap(self, tag: str) -> BrokerTap:
        tap = KafkaTap(self.bootstrap, topology.tap_queue_name(tag), self.topic,
                       lambda: self.ensure_topic(self.topic, self.partitions))
        self._taps.append(tap)
        return tap

    def close(self) -> None:
        self._admin_client = None


def _key(body: bytes) -> bytes | None:
    try:
        return envelope.decode(body).aggregate_id.encode()
    except envelope.EnvelopeError:
        return None
