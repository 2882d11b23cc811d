"""The broker tap on RabbitMQ: a durable queue of the harness's own, bound to the event
exchange like any consumer's, consumed by a background thread over its own connection
straight to the broker (never through the fault proxy, whose faults are meant for the
services).

The queue is durable and the publisher's messages persistent, so a broker that is stopped,
killed or frozen keeps what waits for the tap; the thread reconnects with a bounded
backoff and goes on. A message is acknowledged only after it is recorded; one redelivered
after a reconnect is recorded again with its redelivered flag, and the checkers count
events by event_id.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions

from harness.contract import naming as topology
from harness.errors import BrokerError, HarnessError
from harness.observers.tap import BrokerTap, record_message

PREFETCH = 1000
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 2.0
POLL_S = 0.2  # longest the consumer thread waits before looking at its stop flag
STOP_JOIN_S = 3.0  # stop() waits this long for the thread, then leaves it (a daemon)
NOT_FOUND = 404


class RabbitTap(BrokerTap):
    def __init__(self, url: str, queue: str, depth: Callable[[], int]) -> None:
        """`depth` returns how many messages wait in `queue` (read over another
        connection, from the caller's thread)."""
        super().__init__(queue)
        self.url = url
        self.queue = queue
        self._depth = depth
        self._stop = threading.Event()
        self._consuming = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"tap:{queue}", daemon=True)

    def _params(self) -> pika.URLParameters:
        params = pika.URLParameters(self.url)
        # Fail fast on a dead or frozen broker: the reconnect loop, not a hung socket,
        # rides out an outage.
        params.socket_timeout = 2
        params.stack_timeout = 5
        params.blocked_connection_timeout = 5
        params.connection_attempts = 1
        params.heartbeat = 10
        return params

    def _declare(self, channel: Any) -> None:
        # Same arguments as every service declares them with: declaring is idempotent.
        channel.exchange_declare(topology.EXCHANGE, exchange_type="topic", durable=True)
        channel.queue_declare(self.queue, durable=True)
        channel.queue_bind(self.queue, topology.EXCHANGE, routing_key=topology.EVENTS_BINDING)

    def start(self) -> None:
        try:
            connection = pika.BlockingConnection(self._params())
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerError(f"broker tap: cannot connect to {self.url}: "
                              f"{type(exc).__name__}: {exc}") from exc
        try:
            self._declare(connection.channel())
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BrokerError(f"broker tap: cannot declare {self.queue}: "
                              f"{type(exc).__name__}: {exc}") from exc
        finally:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                connection.close()
        self._thread.start()

    def _run(self) -> None:
        backoff_s = BACKOFF_FIRST_S
        while not self._stop.is_set():
            try:
                self._consume()
                backoff_s = BACKOFF_FIRST_S
            except (pika.exceptions.AMQPError, OSError) as exc:
                self.state.reconnects += 1
                self.state.last_error = f"{type(exc).__name__}: {exc}"
                self._stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)

    def _queue_exists(self, connection: pika.BlockingConnection) -> bool:
        # A failed passive declare closes its channel: use a throwaway one.
        channel = connection.channel()
        try:
            channel.queue_declare(self.queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == NOT_FOUND:
                return False
            raise
        with contextlib.suppress(pika.exceptions.AMQPError):
            channel.close()
        return True

    def _consume(self) -> None:
        connection = pika.BlockingConnection(self._params())
        try:
            if not self._queue_exists(connection):
                # The broker lost the tap's queue (it lost its data): whatever was
                # published until it is declared again never reaches the tap.
                self.state.subscription_lost = True
            channel = connection.channel()
            self._declare(channel)
            channel.basic_qos(prefetch_count=PREFETCH)
            last_tag = 0

            def on_message(_ch: Any, method: Any, _props: Any, body: bytes) -> None:
                nonlocal last_tag
                self.recorder.add(record_message(bytes(body), bool(method.redelivered),
                                                 time.time()))
                last_tag = int(method.delivery_tag)

            channel.basic_consume(self.queue, on_message, auto_ack=False)
            self._consuming.set()
            while not self._stop.is_set():
                connection.process_data_events(time_limit=POLL_S)
                if last_tag:
                    # Recorded first, acknowledged after: a crash in between gives a second
                    # record of the message, never none.
                    channel.basic_ack(last_tag, multiple=True)
                    last_tag = 0
        finally:
            self._consuming.clear()
            if connection.is_open:
                with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                    connection.close()

    def drain(self, timeout_s: float) -> bool:
        """Done when the tap is consuming, its queue holds nothing ready, and no record
        arrived since the previous look (messages already on their way are in)."""
        deadline = time.monotonic() + timeout_s
        previous = -1
        while True:
            count = self.recorder.count()
            if self._consuming.is_set():
                try:
                    if self._depth() == 0 and count == previous:
                        self.state.drained = True
                        return True
                except HarnessError as exc:
                    self.state.last_error = str(exc)
            previous = count
            if time.monotonic() >= deadline:
                self.state.drained = False
                return False
            time.sleep(0.25)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_JOIN_S)
