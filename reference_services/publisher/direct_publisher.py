"""BUG VARIANT `dual_write`: publish straight from the request after the database commit,
without the outbox. If the broker is unreachable at that moment the event is gone, while
the change stays committed: the classic dual-write bug the outbox exists to prevent."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

import pika
import pika.exceptions

from harness.contract import envelope as env
from reference_services.common import rabbitmq

log = logging.getLogger(__name__)


class EventPublisher(Protocol):
    """What the variant calls after each commit. `stored` is called once the broker has
    the event, maybe later and from another thread; an event lost is only logged."""

    def publish(self, envelope: env.Envelope, stored: Callable[[], None]) -> None: ...


class DirectPublisher:
    def __init__(self, broker_url: str) -> None:
        self.params = rabbitmq.connection_parameters(broker_url)
        self._lock = threading.Lock()
        self._channel: pika.adapters.blocking_connection.BlockingChannel | None = None
        self.failures = 0

    def publish(self, envelope: env.Envelope, stored: Callable[[], None]) -> None:
        with self._lock:
            try:
                if self._channel is None or not self._channel.is_open:
                    self._channel = pika.BlockingConnection(self.params).channel()
                    rabbitmq.declare_exchange(self._channel)
                self._channel.basic_publish(
                    rabbitmq.EXCHANGE, rabbitmq.routing_key(envelope.aggregate_id),
                    envelope.encode(), pika.BasicProperties(delivery_mode=2,
                                                            message_id=envelope.event_id))
            except (pika.exceptions.AMQPError, OSError) as exc:
                # The write is committed and the caller told it succeeded: the event is lost.
                self.failures += 1
                self._channel = None
                log.error("dual_write: event %s not published: %s", envelope.event_id, exc)
                return
        stored()
