"""A RabbitMQ publisher that confirms whole batches.

pika's BlockingChannel waits for a confirm after every message, which caps a relay at a
few hundred messages per second here. This class runs pika's asynchronous SelectConnection
on its own I/O thread and exposes one blocking call, `publish_batch`, that returns once the
broker has confirmed every message of the batch (or raises): one round trip per batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
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


class ConfirmingPublisher:
    def __init__(self, url: str, connect_timeout_s: float = 5.0) -> None:
        self._params = rabbitmq.connection_parameters(url)
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._batch_done = threading.Event()
        self._connection: pika.SelectConnection | None = None
        self._channel: Channel | None = None
        self._thread: threading.Thread | None = None
        self._error: str | None = None
        self._next_tag = 0
        self._outstanding: set[int] = set()
        self._nacked = 0

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
        if not messages:
            return
        connection = self._connection
        if connection is None or not self.connected:
            raise PublishError("not connected")
        with self._lock:
            self._batch_done.clear()
            self._nacked = 0
            connection.ioloop.add_callback_threadsafe(lambda: self._publish_all(messages))
            if not self._batch_done.wait(timeout_s):
                raise PublishError(f"batch of {len(messages)} not confirmed within {timeout_s}s")
            if self._error:
                raise PublishError(self._error)
            if self._nacked:
                raise PublishError(f"broker nacked {self._nacked} of {len(messages)} messages")

    def _publish_all(self, messages: Sequence[OutgoingMessage]) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            self._fail("channel closed before publishing")
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
            self._outstanding.add(self._next_tag)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        tag = method.delivery_tag
        done = {t for t in self._outstanding if t <= tag} if method.multiple else {tag}
        if isinstance(method, pika.spec.Basic.Nack):
            self._nacked += len(done & self._outstanding)
        self._outstanding -= done
        if not self._outstanding:
            self._batch_done.set()

    def _fail(self, reason: str) -> None:
        self._error = reason
        self._outstanding.clear()
        self._batch_done.set()
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
