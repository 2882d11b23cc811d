"""Consumes the consumer's RabbitMQ queue in batches.

Messages are collected while more have already arrived (up to a full batch, or for at most
max_batch_age_s), applied in one transaction, and only then acknowledged with one
multiple-ack. A crash before the ack makes the broker redeliver the whole batch, which the
inbox turns into no-ops. A batch whose transaction fails (the publisher or the database
unreachable) is handed back to the broker and the worker reconnects after a pause, so it
comes again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

from harness.contract.envelope import EnvelopeError, decode
from reference_services.common import rabbitmq
from reference_services.common.crashpoints import CRASH_POINTS
from reference_services.common.reconnect import Reconnect, probe_for
from reference_services.consumer.applier import (
    Applier,
    DatabaseUnavailable,
    IncomingMessage,
    ResyncUnavailable,
    db_retry_pause_s,
)

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    connected: bool = False
    batches: int = 0
    messages: int = 0
    redelivered: int = 0
    retries: int = 0
    last_error: str = ""


class RabbitWorker:
    def __init__(self, applier: Applier, broker_url: str, consumer_name: str,
                 variant: str = "none", prefetch: int = 500, batch_max: int = 500,
                 max_batch_age_s: float = 0.05) -> None:
        self.applier = applier
        self.broker_url = broker_url
        self.params = rabbitmq.connection_parameters(broker_url)
        self.consumer_name = consumer_name
        self.variant = variant
        self.prefetch = prefetch
        self.batch_max = batch_max
        self.max_batch_age_s = max_batch_age_s
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="consumer", daemon=True)
        self._db_failures = 0  # batches in a row whose transaction failed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def health(self) -> dict[str, Any]:
        stats = self.stats
        return {"connected": stats.connected, "batches": stats.batches,
                "messages": stats.messages, "retries": stats.retries,
                "last_error": stats.last_error}

    def _run(self) -> None:
        reconnect = Reconnect("consumer", probe_for(self.broker_url), self._stop)
        while not self._stop.is_set():
            try:
                self._consume(reconnect)
            except DatabaseUnavailable as exc:
                # The broker is fine: no probing it. The batch went back to the queue and
                # comes again once reconnected, after a pause growing while this lasts.
                self.stats.connected = False
                self.stats.last_error = f"DatabaseUnavailable: {exc}"
                self._db_failures += 1
                pause_s = db_retry_pause_s(self._db_failures)
                log.warning("consumer: database unavailable: %s; retrying the batch in "
                            "%.2fs", exc, pause_s)
                self._stop.wait(pause_s)
            except (pika.exceptions.AMQPError, OSError, ResyncUnavailable) as exc:
                self.stats.connected = False
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                reconnect.failed(self.stats.last_error)
                reconnect.wait()

    def _consume(self, reconnect: Reconnect) -> None:
        connection = pika.BlockingConnection(self.params)
        try:
            channel = connection.channel()
            queue = rabbitmq.declare_consumer_queues(channel, self.consumer_name)
            channel.basic_qos(prefetch_count=self.prefetch)
            pending: list[tuple[int, IncomingMessage]] = []

            def on_message(ch: Any, method: Any, _props: Any, body: bytes) -> None:
                if self.variant == "ack_before_commit":
                    # BUG (variant): the broker forgets the message before it is stored.
                    ch.basic_ack(method.delivery_tag)
                pending.append((method.delivery_tag,
                                IncomingMessage(body, bool(method.redelivered), time.time())))

            channel.basic_consume(queue, on_message, auto_ack=False)
            self.stats.connected = True
            reconnect.succeeded()
            log.info("consuming %s", queue)
            first_at = 0.0
            while not self._stop.is_set():
                before = len(pending)
                # With messages in hand, only read what has already arrived (time_limit 0:
                # no wait): when nothing more has, the batch is applied at once, so a
                # trickle of events is not held for a timer. A backlog still makes big
                # batches: what arrives while one batch is applied forms the next.
                connection.process_data_events(time_limit=0 if pending else 0.1)
                if pending and before == 0:
                    first_at = time.monotonic()
                quiet = len(pending) == before
                if pending and (quiet or len(pending) >= self.batch_max
                                or time.monotonic() - first_at >= self.max_batch_age_s):
                    self._flush(channel, pending)
                    pending.clear()
        finally:
            if connection.is_open:
                connection.close()

    @staticmethod
    def _has_poison(messages: list[IncomingMessage]) -> bool:
        for message in messages:
            try:
                decode(message.body)
            except EnvelopeError:
                return True
        return False

    def _flush(self, channel: Any, pending: list[tuple[int, IncomingMessage]]) -> None:
        messages = [m for _, m in pending]
        last_tag = pending[-1][0]
        if self.variant == "poison_requeue_loop" and self._has_poison(messages):
            # BUG (variant): an unprocessable message is handed back to the broker instead
            # of being dead-lettered, so it comes back forever and blocks its batch.
            channel.basic_nack(last_tag, multiple=True, requeue=True)
            self.stats.retries += 1
            return
        try:
            result = self.applier.apply_batch(messages)
        except (ResyncUnavailable, DatabaseUnavailable):
            self.stats.retries += 1
            if self.variant != "ack_before_commit":
                channel.basic_nack(last_tag, multiple=True, requeue=True)
            raise
        # The database store is the record; the broker-side queue is for operators' tools.
        # Published after the commit and before the ack: a crash between them gives a
        # second copy, never a lost one.
        for index, reason in result.dead_letter_reasons.items():
            channel.basic_publish(
                rabbitmq.DEAD_LETTER_EXCHANGE, self.consumer_name, messages[index].body,
                pika.BasicProperties(delivery_mode=2, headers={"x-reason": reason[:500],
                                                               "x-consumer": self.consumer_name}))
        self._db_failures = 0
        CRASH_POINTS.hit("consumer.after_apply_before_ack")
        if self.variant != "ack_before_commit":
            channel.basic_ack(last_tag, multiple=True)
        self.stats.batches += 1
        self.stats.messages += len(messages)
        self.stats.redelivered += sum(1 for m in messages if m.redelivered)
