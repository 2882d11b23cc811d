"""Broker adapters: what the harness itself does to a broker, whatever the broker is.

The reference services have their own client code; an adapter is the harness's side:
observing queues and consumer lag, and the broker-level operations faults use.

Every operation names a consumer; the adapter maps it to the broker's notion of that
consumer's subscription (a queue in RabbitMQ, a consumer group's position in Kafka).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.observers.tap import BrokerTap

ReleaseOrder = Literal["fifo", "reversed", "shuffled"]
RELEASE_ORDERS: tuple[ReleaseOrder, ...] = ("fifo", "reversed", "shuffled")


@dataclass(frozen=True)
class Discarded:
    """What `release_discarding` did with a diverted consumer's held events."""

    released: int  # handed over to the consumer
    bodies: tuple[bytes, ...]  # deleted instead, oldest first


@dataclass(frozen=True)
class QueueState:
    ready: int  # waiting for a consumer
    consumers: int


@dataclass(frozen=True)
class QueueCounters:
    """A consumer's subscription as the broker counts it, read at one moment."""

    name: str  # the broker's name for it (e.g. its queue)
    ready: int  # waiting for a consumer
    unacked: int | None  # delivered, not yet acknowledged; None: not cheaply readable
    consumers: int
    read_with: str  # how the broker was asked (for the report)
    read_s: float  # what asking cost


class BrokerAdapter(ABC):
    kind: str
    # What this adapter can do beyond observing (harness/brokers/capabilities.py). A
    # method whose capability is not offered raises BrokerError naming it.
    capabilities: frozenset[str] = frozenset()
    # Whether bytes given to `publish_raw` reach every reader of the event stream (every
    # consumer and the harness's tap) rather than the one consumer named: true where
    # consumers share one log (Kafka), false where each has its own queue (RabbitMQ). The
    # faults that inject record it, so the checks can tell what the system under test put
    # on the broker from what the harness put there itself.
    raw_reaches_every_reader: bool = False

    @abstractmethod
    def wait_ready(self, timeout_s: float) -> None: ...

    @abstractmethod
    def consumer_queue(self, consumer_name: str) -> QueueState:
        """Backlog and attached consumers of one consumer's subscription."""

    @abstractmethod
    def purge(self, consumer_name: str) -> int:
        """Drop every message waiting for that consumer; returns how many were dropped."""

    @abstractmethod
    def delete_queue(self, consumer_name: str) -> int:
        """Destroy that consumer's subscription with everything waiting in it, as a broker
        that lost its data would; returns how many messages were lost.

        The consumer recreates its subscription when it next (re)connects; events
        published before that never reach it.
        """

    @abstractmethod
    def publish_raw(self, consumer_name: str, bodies: Sequence[bytes]) -> None:
        """Put these exact bytes, durably and in this order, into the stream that consumer
        reads; when `raw_reaches_every_reader`, every other reader of the event stream
        (other consumers, the harness's tap) reads them too, otherwise none does. Returns
        once the broker has accepted every one."""

    @abstractmethod
    def divert(self, consumer_name: str) -> None:
        """From now on, hold back new events for that consumer instead of delivering them.

        Nothing is lost while diverted: events accumulate at the broker until `release`.
        Messages already waiting for the consumer stay where they are. Diverting a
        consumer that is already diverted changes nothing.
        """

    @abstractmethod
    def release(self, consumer_name: str, order: ReleaseOrder,
                rng: random.Random | None = None) -> int:
        """Undo `divert`: deliver new events to the consumer again, then hand it every
        held event in `order` ("fifo": as published; "reversed": newest first;
        "shuffled": permuted with `rng`, which is then required). Returns how many held
        events were handed over; 0 when the consumer is not diverted, so calling it twice
        is harmless. Delivery is at-least-once: an event published at the very moment of
        a switch may reach the consumer twice, never zero times.
        """

    @abstractmethod
    def release_discarding(self, consumer_name: str,
                           discard: Callable[[bytes], bool]) -> Discarded:
        """Undo `divert` as release(..., "fifo") does, except that the held events for
        which `discard(body)` is true are deleted instead of handed over, as a broker that
        lost them would. Events that reach the hold queue while this runs are handed over,
        never discarded. Nothing is discarded when the consumer is not diverted."""

    @abstractmethod
    def dead_letter_depth(self, consumer_name: str) -> int:
        """Messages waiting in that consumer's dead-letter destination."""

    @abstractmethod
    def open_tap(self, tag: str) -> BrokerTap:
        """The harness's own subscription to every event (see harness/observers/tap.py),
        named after `tag`; not yet started."""

    @abstractmethod
    def queue_counters(self, consumer_name: str) -> QueueCounters:
        """That consumer's subscription's backlog, unacknowledged deliveries and consumers,
        as the broker itself counts them."""

    @abstractmethod
    def close(self) -> None: ...
