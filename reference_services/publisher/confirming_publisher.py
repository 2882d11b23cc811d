"""A RabbitMQ publisher that confirms whole batches.

pika's BlockingChannel waits for a confirm after every message, which caps a relay at a
few hundred messages per second here. This class runs pika's asynchronous SelectConnection
on its own I/O thread. `publish_async` sends a batch and returns at once a PublishedBatch
that settles when the broker has confirmed every message of it (or nacked one, or the
connection failed), so a caller can send the next batch while the broker persists the last
one (a confirm waits for the broker's disk: tens of ms at times on a busy machine).
`publish_batch` sends one and waits for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pika
from pika.channel import Channel

from reference_services.common import rabbitmq

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The batch was not confirmed: the broker nacked it, or the connection went away."""


@dataclass(frozen=True)
class OutgoingMessage:
    routing_key: str
    body: bytes
    message_id: str


class PublishedBatch:
    """A batch sent to the broker, settled once every message of it is confirmed or nacked,
    or its connection failed. Settled by the publisher's I/O thread; read by any thread."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent_at = time.monotonic()
        self.unconfirmed = size
        self.nacked = 0
        self.error: str | None = None
        self._settled = threading.Event()

    def settled(self) -> bool:
        return self._settled.is_set()

    def settle(self) -> None:
        self._settled.set()

    def wait(self, timeout_s: float) -> None:
        """Returns once the broker has every message; raises PublishError otherwise."""
        if not self._settled.wait(timeout_s):
            raise PublishError(f"batch of {self.size} not confirmed within {timeout_s}s")
        if self.error:
            raise PublishError(self.error)
        if self.nacked:
            raise PublishError(f"broker nacked {self.nacked} of {self.size} messages")


class ConfirmingPublisher:
    def __init__(self, url: str, connect_timeout_s: float = 5.0,
                 on_settled: Callable[[], None] = lambda: None) -> None:
        """`on_settled` is called (on the I/O thread) each time a batch settles."""
        self._params = rabbitmq.connection_parameters(url)
        self._connect_timeout_s = connect_timeout_s
        self._on_settled = on_settled
        self._ready = threading.Event()
        self._connection: pika.SelectConnection | None = None
        self._channel: Channel | None = None
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self._next_tag = 0
        # Delivery tag -> its batch, in tag order (tags only grow). I/O thread only.
        self._outstanding: dict[int, PublishedBatch] = {}

    # -- lifecycle -------------------------------------------------------------------
    def connect(self) -> None:
        self._error = None
        self._ready.clear()
        self._connection = pika.SelectConnection(
            self._params,
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_error,
            on_close_callback=self._on_connection_closed,
        )
        self._thread = threading.Thread(target=self._connection.ioloop.start,
                                         name="relay-amqp-io", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._connect_timeout_s) or self._error:
            reason = self._error or f"not ready within {self._connect_timeout_s}s"
            self.close()
            raise PublishError(f"cannot connect to RabbitMQ: {reason}")

    def close(self) -> None:
        connection, thread = self._connection, self._thread
        self._connection, self._thread, self._channel = None, None, None
        if connection is None:
            return

        def _shutdown() -> None:
            if connection.is_open:
                connection.close()
            else:
                connection.ioloop.stop()

        try:
            connection.ioloop.add_callback_threadsafe(_shutdown)
        except Exception as exc:
            log.debug("closing publisher: %s", exc)
        if thread is not None:
            thread.join(timeout=5)

    @property
    def connected(self) -> bool:
        return self._connection is not None and self._ready.is_set() and self._error is None

    # -- publishing ------------------------------------------------------------------
    def publish_batch(self, messages: Sequence[OutgoingMessage], timeout_s: float = 5.0) -> None:
        if messages:
            self.publish_async(messages).wait(timeout_s)

    def publish_async(self, messages: Sequence[OutgoingMessage]) -> PublishedBatch:
        connection = self._connection
        if connection is None or not self.connected:
            raise PublishError("not connected")
        batch = PublishedBatch(len(messages))
        connection.ioloop.add_callback_threadsafe(lambda: self._publish_all(messages, batch))
        return batch

    def _publish_all(self, messages: Sequence[OutgoingMessage], batch: PublishedBatch) -> None:
        channel = self._channel
        if channel is None or not channel.is_open or self._error:
            batch.error = self._error or "channel closed before publishing"
            self._settle(batch)
            return
        for message in messages:
            channel.basic_publish(
                rabbitmq.EXCHANGE,
                message.routing_key,
                message.body,
                pika.BasicProperties(delivery_mode=2, message_id=message.message_id,
                                     content_type="application/json"),
            )
            self._next_tag += 1
            self._outstanding[self._next_tag] = batch

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        if method.multiple:
            done = []
            for outstanding in self._outstanding:  # in tag order
                if outstanding > tag:
                    break
                done.append(outstanding)
        else:
            done = [tag] if tag in self._outstanding else []
        nack = isinstance(method, pika.spec.Basic.Nack)
        for done_tag in done:
            batch = self._outstanding.pop(done_tag)
            batch.unconfirmed -= 1
            if nack:
                batch.nacked += 1
            if batch.unconfirmed == 0:
                self._settle(batch)

    def _settle(self, batch: PublishedBatch) -> None:
        batch.settle()
        self._on_settled()

    def _fail(self, reason: str) -> None:
        self._error = reason
        failed = set(self._outstanding.values())
        self._outstanding.clear()
        for batch in failed:
            batch.error = reason
            self._settle(batch)
        self._ready.set()

    # -- pika callbacks (I/O thread) --------------------------------------------------
    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_error(self, _connection: Any, error: BaseException | str) -> None:
        self._fail(f"connection failed: {error}")
        if self._connection is not None:
            self._connection.ioloop.stop()

    def _on_connection_closed(self, connection: pika.SelectConnection,
                              reason: BaseException) -> None:
        self._fail(f"connection closed: {reason}")
        connection.ioloop.stop()

    def _on_channel_open(self, channel: Channel) -> None:
        self._channel = channel
        self._next_tag = 0
        self._outstanding.clear()
        channel.add_on_close_callback(self._on_channel_closed)
        channel.exchange_declare(
            rabbitmq.EXCHANGE, exchange_type="topic", durable=True,
            callback=lambda _frame: channel.confirm_delivery(
                ack_nack_callback=self._on_confirm,
                callback=lambda _ok: self._ready.set(),
            ),
        )

    def _on_channel_closed(self, _channel: Channel, reason: BaseException) -> None:
        self._fail(f"channel closed: {reason}")
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
