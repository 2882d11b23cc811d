"""RabbitMQ adapter (pika)."""

from __future__ import annotations

import contextlib
import random
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel as Channel

from harness.brokers import capabilities
from harness.brokers.base import (
    RELEASE_ORDERS,
    BrokerAdapter,
    Discarded,
    QueueCounters,
    QueueState,
    ReleaseOrder,
)
from harness.brokers.rabbitmq_tap import RabbitTap
from harness.contract import naming as topology
from harness.errors import BrokerError
from harness.observers.tap import BrokerTap
from harness.waiting import wait_until

EVENTS_BINDING = topology.EVENTS_BINDING
PERSISTENT = 2  # AMQP delivery_mode
# Moving held messages back is test-volume work; these bound it in count and time.
RELEASE_MAX_MESSAGES = 100_000
RELEASE_TIMEOUT_S = 60.0

NOT_FOUND = 404
PRECONDITION_FAILED = 406


held_queue_name = topology.held_queue_name


def declare_exchange(channel: Channel) -> None:
    channel.exchange_declare(topology.EXCHANGE, exchange_type="topic", durable=True)


def _closed_with(exc: BaseException, code: int) -> bool:
    return isinstance(exc, pika.exceptions.ChannelClosedByBroker) and exc.reply_code == code


@dataclass(frozen=True)
class RabbitCtl:
    """How to run `rabbitmqctl` against one node: its name (for messages), and `command`,
    which runs `rabbitmqctl -n <node> -q <args>` where the node runs
    (RabbitMQNode.rabbitmqctl: on the host, or in the node's container)."""

    node: str
    # (args, timeout in s, standard input or None) -> the finished program
    command: Callable[[Sequence[str], float, str | None], subprocess.CompletedProcess[str]]
    timeout_s: float = 10.0
    vhost: str = "/"  # the virtual host list_queues reads

    def run(self, *args: str, stdin: str | None = None) -> str:
        """`rabbitmqctl <args>` against the node, fed `stdin`; its output, or BrokerError."""
        try:
            done = self.command(args, self.timeout_s, stdin)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BrokerError(f"rabbitmqctl {args[0]} on {self.node}: {exc}") from exc
        if done.returncode != 0:
            raise BrokerError(f"rabbitmqctl {args[0]} on {self.node} exited "
                              f"{done.returncode}: {done.stderr.strip()[:300]}")
        return done.stdout

    def list_queues(self, *columns: str) -> list[list[str]]:
        out = self.run("list_queues", "-p", self.vhost, "--no-table-headers", *columns)
        return [line.split("\t") for line in out.splitlines() if line.strip()]


class RabbitMQAdapter(BrokerAdapter):
    kind = "rabbitmq"
    capabilities = capabilities.ALL
    # publish_raw goes through the default exchange to the consumer's queue alone.
    raw_reaches_every_reader = False

    def __init__(self, url: str, ctl: RabbitCtl | None = None) -> None:
        """`ctl`, when given, reads what AMQP cannot tell (unacknowledged counts)."""
        self.url = url
        self.ctl = ctl
        self._connection: pika.BlockingConnection | None = None

    def _channel(self) -> Channel:
        # One short-lived channel per call: a passive declare on a missing queue closes the
        # channel, and brokers restart under us during faults. A connection the broker
        # dropped while we were idle is only noticed here: reconnect once.
        for attempt in range(2):
            if self._connection is None or not self._connection.is_open:
                params = pika.URLParameters(self.url)
                params.socket_timeout = 2
                params.connection_attempts = 1
                self._connection = pika.BlockingConnection(params)
            try:
                return self._connection.channel()
            except (pika.exceptions.AMQPConnectionError, OSError):
                self._reset()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _reset(self) -> None:
        if self._connection is not None and self._connection.is_open:
            # Closing a connection the broker already dropped has nothing left to do.
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                self._connection.close()
        self._connection = None

    @contextlib.contextmanager
    def _session(self, what: str, confirm: bool = False) -> Iterator[Channel]:
        """A fresh channel, closed afterwards; pika errors become BrokerError naming `what`.

        With `confirm`, every basic_publish waits for the broker's confirm and raises if
        the message was refused or (published as mandatory) could not be routed.
        """
        channel: Channel | None = None
        try:
            channel = self._channel()
            if confirm:
                channel.confirm_delivery()
            yield channel
        except (pika.exceptions.AMQPError, OSError) as exc:
            if isinstance(exc, pika.exceptions.AMQPConnectionError | OSError):
                self._reset()
            raise BrokerError(f"cannot {what} on RabbitMQ at {self.url}: "
                              f"{type(exc).__name__}: {exc}") from exc
        finally:
            if channel is not None and channel.is_open:
                with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                    channel.close()

    def wait_ready(self, timeout_s: float) -> None:
        def ready() -> bool:
            self._channel().close()
            return True

        wait_until(ready, timeout_s, f"RabbitMQ at {self.url} to accept AMQP")

    def consumer_queue(self, consumer_name: str) -> QueueState:
        with self._session(f"inspect queue of {consumer_name}") as channel:
            frame = channel.queue_declare(topology.queue_name(consumer_name), passive=True)
        return QueueState(ready=int(frame.method.message_count),
                          consumers=int(frame.method.consumer_count))

    def purge(self, consumer_name: str) -> int:
        with self._session(f"purge queue of {consumer_name}") as channel:
            frame = channel.queue_purge(topology.queue_name(consumer_name))
        return int(frame.method.message_count)

    def delete_queue(self, consumer_name: str) -> int:
        queue = topology.queue_name(consumer_name)
        with self._session(f"delete queue {queue}") as channel:
            # Deleting a queue that does not exist succeeds with a count of 0.
            frame = channel.queue_delete(queue)
        return int(frame.method.message_count)

    def dead_letter_depth(self, consumer_name: str) -> int:
        queue = topology.dead_letter_queue_name(consumer_name)
        with self._session(f"inspect dead-letter queue {queue}") as channel:
            frame = channel.queue_declare(queue, passive=True)
        return int(frame.method.message_count)

    def publish_raw(self, consumer_name: str, bodies: Sequence[bytes]) -> None:
        queue = topology.queue_name(consumer_name)
        with self._session(f"publish {len(bodies)} raw messages to {queue}",
                           confirm=True) as channel:
            properties = pika.BasicProperties(delivery_mode=PERSISTENT)
            for body in bodies:
                # Default exchange: routed by queue name to that queue alone. Mandatory, so
                # a missing queue is an error instead of a silent drop.
                channel.basic_publish("", queue, body, properties, mandatory=True)

    def divert(self, consumer_name: str) -> None:
        queue = topology.queue_name(consumer_name)
        held = held_queue_name(consumer_name)
        with self._session(f"divert {queue} to {held}") as channel:
            # Fails (404) before anything changes if the consumer has no queue yet.
            channel.queue_declare(queue, passive=True)
            declare_exchange(channel)
            channel.queue_declare(held, durable=True)
            # Bind before unbind: at every instant some queue takes each event.
            channel.queue_bind(held, topology.EXCHANGE, routing_key=EVENTS_BINDING)
            channel.queue_unbind(queue, topology.EXCHANGE, routing_key=EVENTS_BINDING)

    def _held_depth(self, consumer_name: str) -> int | None:
        """Messages in the hold queue, or None when there is no hold queue."""
        held = held_queue_name(consumer_name)
        try:
            with self._session(f"inspect {held}") as channel:
                frame = channel.queue_declare(held, passive=True)
        except BrokerError as exc:
            if _closed_with(exc.__cause__ or exc, NOT_FOUND):
                return None
            raise
        return int(frame.method.message_count)

    def release(self, consumer_name: str, order: ReleaseOrder,
                rng: random.Random | None = None) -> int:
        if order not in RELEASE_ORDERS:
            raise ValueError(f"unknown release order {order!r}; expected one of "
                             f"{', '.join(RELEASE_ORDERS)}")
        if order == "shuffled" and rng is None:
            raise ValueError("release order 'shuffled' needs an rng (for reproducible runs)")
        if self._held_depth(consumer_name) is None:
            return 0  # not diverted (or already released)
        queue = topology.queue_name(consumer_name)
        held = held_queue_name(consumer_name)
        with self._session(f"release {held} into {queue}", confirm=True) as channel:
            # Re-bind before unbinding the hold queue: nothing is unroutable in between.
            channel.queue_bind(queue, topology.EXCHANGE, routing_key=EVENTS_BINDING)
            channel.queue_unbind(held, topology.EXCHANGE, routing_key=EVENTS_BINDING)
            messages = self._take_all(channel, held)
            if order == "reversed":
                messages.reverse()
            elif order == "shuffled" and rng is not None:
                rng.shuffle(messages)
            for _tag, properties, body in messages:
                properties.delivery_mode = PERSISTENT
                channel.basic_publish("", queue, body, properties, mandatory=True)
            if messages:
                # Every republish is confirmed: only now may the held copies go. Should a
                # publish fail, the unacked held copies return to the hold queue on close.
                channel.basic_ack(max(tag for tag, _, _ in messages), multiple=True)
            try:
                channel.queue_delete(held, if_empty=True)
            except pika.exceptions.ChannelClosedByBroker as exc:
                # Someone published straight into the hold queue meanwhile: keep it, so a
                # later release() moves those too.
                if exc.reply_code != PRECONDITION_FAILED:
                    raise
        return len(messages)

    @staticmethod
    def _take_all(channel: Channel, queue: str) -> list[tuple[int, Any, bytes]]:
        """basic_get (unacked) everything in an unbound queue, oldest first."""
        expected = int(channel.queue_declare(queue, passive=True).method.message_count)
        if expected > RELEASE_MAX_MESSAGES:
            raise BrokerError(f"{queue} holds {expected} messages, more than the "
                              f"{RELEASE_MAX_MESSAGES} release() moves")
        deadline = time.monotonic() + RELEASE_TIMEOUT_S
        taken: list[tuple[int, Any, bytes]] = []
        for _ in range(expected):
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            taken.append((int(method.delivery_tag), properties, bytes(body)))
            if time.monotonic() > deadline:
                raise BrokerError(f"taking {expected} messages from {queue} took more than "
                                  f"{RELEASE_TIMEOUT_S:.0f}s; they stay in {queue}")
        return taken

    def _ready_count(self, queue: str) -> int:
        with self._session(f"inspect {queue}") as channel:
            frame = channel.queue_declare(queue, passive=True)
        return int(frame.method.message_count)

    def open_tap(self, tag: str) -> BrokerTap:
        queue = topology.tap_queue_name(tag)
        return RabbitTap(self.url, queue, lambda: self._ready_count(queue))

    def queue_counters(self, consumer_name: str) -> QueueCounters:
        queue = topology.queue_name(consumer_name)
        began = time.monotonic()
        if self.ctl is None:
            state = self.consumer_queue(consumer_name)
            return QueueCounters(queue, state.ready, None, state.consumers,
                                 "AMQP passive declare", round(time.monotonic() - began, 3))
        rows = self.ctl.list_queues("name", "messages_ready", "messages_unacknowledged",
                                    "consumers")
        for row in rows:
            if len(row) == 4 and row[0] == queue:
                return QueueCounters(queue, int(row[1]), int(row[2]), int(row[3]),
                                     "rabbitmqctl list_queues",
                                     round(time.monotonic() - began, 3))
        raise BrokerError(f"rabbitmqctl list_queues on {self.ctl.node} does not list {queue}")

    def close(self) -> None:
        self._reset()

    def release_discarding(self, consumer_name: str,
                           discard: Callable[[bytes], bool]) -> Discarded:
        held = held_queue_name(consumer_name)
        if self._held_depth(consumer_name) is None:
            return Discarded(0, ())  # not diverted (or already released)
        with self._session(f"discard events from {held}") as channel:
            doomed = [(tag, body) for tag, _, body in self._take_all(channel, held)
                      if discard(body)]
            # Acking deletes them. The others go back, unacked, when the channel closes,
            # in their places (classic queues requeue in order), for release() to move.
            for tag, _ in doomed:
                channel.basic_ack(tag)
        return Discarded(self.release(consumer_name, "fifo"),
                         tuple(body for _, body in doomed))
