"""RabbitMQ adapter (pika)."""

from __future__ import annotations

import contextlib

import pika
import pika.exceptions

from harness.brokers.base import BrokerAdapter, QueueState
from harness.errors import BrokerError
from harness.waiting import wait_until
from reference_services.common import rabbitmq as topology


class RabbitMQAdapter(BrokerAdapter):
    kind = "rabbitmq"

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: pika.BlockingConnection | None = None

    def _channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        # One short-lived channel per call: a passive declare on a missing queue closes the
        # channel, and brokers restart under us during faults.
        if self._connection is None or not self._connection.is_open:
            params = pika.URLParameters(self.url)
            params.socket_timeout = 2
            params.connection_attempts = 1
            self._connection = pika.BlockingConnection(params)
        return self._connection.channel()

    def _reset(self) -> None:
        if self._connection is not None and self._connection.is_open:
            # Closing a connection the broker already dropped has nothing left to do.
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                self._connection.close()
        self._connection = None

    def wait_ready(self, timeout_s: float) -> None:
        def ready() -> bool:
            self._channel().close()
            return True

        wait_until(ready, timeout_s, f"RabbitMQ at {self.url} to accept AMQP")

    def consumer_queue(self, consumer_name: str) -> QueueState:
        try:
            channel = self._channel()
            frame = channel.queue_declare(topology.queue_name(consumer_name), passive=True)
            channel.close()
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._reset()
            raise BrokerError(f"cannot inspect queue of {consumer_name}: {exc}") from exc
        return QueueState(ready=frame.method.message_count,
                          consumers=frame.method.consumer_count)

    def purge(self, consumer_name: str) -> int:
        try:
            channel = self._channel()
            frame = channel.queue_purge(topology.queue_name(consumer_name))
            channel.close()
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._reset()
            raise BrokerError(f"cannot purge queue of {consumer_name}: {exc}") from exc
        return int(frame.method.message_count)

    def close(self) -> None:
        self._reset()
