"""The relay's Kafka client, and the `dual_write` variant's, behind the same calls as their
RabbitMQ counterparts (ConfirmingPublisher, DirectPublisher).

`publish_batch` returns only once every record of the batch has a successful delivery
report from an idempotent, acks=all producer, so the relay marks outbox rows sent only for
records the broker stored. Each record's key is its aggregate id (the relay passes it as
the message's routing key), so one product's events stay on one partition, in order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError, KafkaException, Producer

from harness.contract import envelope as env
from reference_services.common import kafka
from reference_services.publisher.confirming_publisher import OutgoingMessage, PublishError

log = logging.getLogger(__name__)


# How long the relay gives a batch to be stored before it counts as failed (its rows stay
# unsent and go out again). A healthy produce takes tens of milliseconds here, a few
# hundred under load. Longer, librdkafka would carry the records of a batch across a
# broker outage of a few seconds: the relay would not see the outage, and a relay that
# marks rows sent before the broker has them (variant mark_sent_before_confirm) would lose
# them only when the outage happened to outlast the timeout.
RELAY_TIMEOUT_S = 2.5


class KafkaBatchPublisher:
    def __init__(self, url: str, timeout_s: float = RELAY_TIMEOUT_S) -> None:
        self._bootstrap = kafka.bootstrap_servers(url)
        self._timeout_s = timeout_s
        self._producer: Producer | None = None
        self._fatal: str | None = None

    def connect(self) -> None:
        self._fatal = None
        try:
            kafka.ensure_topic(self._bootstrap, kafka.EVENTS_TOPIC, kafka.EVENTS_PARTITIONS,
                               self._timeout_s)
        except kafka.KafkaUnavailable as exc:
            raise PublishError(str(exc)) from exc
        self._producer = Producer({**kafka.producer_config(self._bootstrap, "relay",
                                                           self._timeout_s),
                                   "error_cb": self._on_error})

    def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            # Unsent records belong to rows still unsent in the outbox: they go out again
            # from there, so nothing queued here is worth waiting for.
            producer.purge()
            producer.flush(1.0)

    @property
    def connected(self) -> bool:
        return self._producer is not None and self._fatal is None

    def _produce(self, messages: Sequence[OutgoingMessage],
                 on_delivery: Callable[[KafkaError | None, object], None]) -> Producer:
        """Queue every message of the batch on the producer, which is returned."""
        producer = self._producer
        if producer is None or not self.connected:
            raise PublishError("not connected")
        try:
            for message in messages:
                producer.produce(kafka.EVENTS_TOPIC, message.body,
                                 key=message.routing_key.encode(), on_delivery=on_delivery)
        except (KafkaException, BufferError) as exc:
            raise PublishError(f"cannot queue the batch: {exc}") from exc
        return producer

    def publish_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, _message: object) -> None:
            if error is not None:
                failures.append(str(error))

        producer = self._produce(messages, on_delivery)
        # Every record times out (message.timeout.ms) by then, so each has its report.
        try:
            unreported = producer.flush(self._timeout_s + 1.0)
        except KafkaException as exc:
            # A fatal error (e.g. the idempotent producer's sequence lost) is raised here
            # rather than reported per record: the relay replaces the producer and the
            # rows, still unsent, go out again.
            self._fatal = str(exc)
            raise PublishError(f"producer failed: {exc}") from exc
        if self._fatal:
            raise PublishError(f"producer failed: {self._fatal}")
        if unreported:
            raise PublishError(f"{unreported} of {len(messages)} records without a delivery "
                               f"report after {self._timeout_s + 1.0}s")
        if failures:
            raise PublishError(f"{len(failures)} of {len(messages)} records not delivered: "
                               f"{failures[0]}")

    def publish_unconfirmed(self, messages: Sequence[OutgoingMessage]) -> None:
        """For the variant `mark_sent_before_confirm`: hand the batch to the producer and
        return without waiting for its delivery reports. A record the broker never takes
        fails only in a report nobody acts on (it is logged)."""

        def on_delivery(error: KafkaError | None, _message: object) -> None:
            if error is None:
                return
            log.error("relay: a record marked sent was not delivered: %s", error)
            if error.fatal() or error.code() == KafkaError.PRODUCER_FENCED:
                # Every later record would fail too: the relay replaces the producer.
                self._fatal = str(error)

        # Serve the reports (and errors) that arrived meanwhile.
        self._produce(messages, on_delivery).poll(0)

    def _on_error(self, error: KafkaError) -> None:
        # An idempotent producer that lost its sequence state (e.g. the broker forgot it)
        # is unusable: the relay replaces it. Anything else librdkafka retries itself.
        if error.fatal():
            self._fatal = str(error)
        log.warning("kafka producer: %s", error)


class KafkaDirectPublisher:
    """BUG VARIANT `dual_write` on Kafka: each event is produced from the request after
    its database commit, with no outbox; a record the broker does not take is gone.

    Fire and forget, like its RabbitMQ counterpart (a publish without confirms): the
    request does not wait for the record's delivery report, which arrives later on the
    producer's own thread. While librdkafka reports every broker down it gives up at
    once, as a refused RabbitMQ connect does. A producer whose record failed is replaced,
    as the relay's is: after a broker restart an idempotent producer's id is fenced and
    every later record would fail with it. (Waiting for each report behind one lock, as
    this variant first did, held every write for the broker's round trip: the publisher
    offered well under the scenario's rate, which then failed on progress rather than on
    the lost events the variant exists to show.)"""

    # While the broker is reported down, one request in this long re-checks it.
    _PROBE_INTERVAL_S = 0.2

    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self._bootstrap = kafka.bootstrap_servers(url)
        self._timeout_s = timeout_s
        self._lock = threading.Lock()  # the producer's creation and replacement, counters
        self._producer: Producer | None = None
        self._failed: Producer | None = None  # the producer to replace at the next send
        self._down = False
        self._next_probe = 0.0
        self.failures = 0

    def publish(self, envelope: env.Envelope, stored: Callable[[], None]) -> None:
        producer: Producer | None = None
        try:
            producer = self._current_producer()
            if self._down and not self._broker_back(producer):
                self._lost(producer, envelope, "every broker is down")
                return
            sender = producer

            def on_delivery(error: KafkaError | None, _message: object) -> None:
                if error is not None:
                    self._lost(sender, envelope, str(error))
                    return
                try:
                    stored()
                except Exception:  # an error here would end the thread serving reports
                    log.exception("dual_write: event %s delivered, not marked sent",
                                  envelope.event_id)

            producer.produce(kafka.EVENTS_TOPIC, envelope.encode(),
                             key=kafka.message_key(envelope.aggregate_id).encode(),
                             on_delivery=on_delivery)
        except (KafkaException, kafka.KafkaUnavailable, BufferError) as exc:
            self._lost(producer, envelope, str(exc))

    def _lost(self, producer: Producer | None, envelope: env.Envelope, error: str) -> None:
        # The write is committed and the caller told it succeeded: the event is lost.
        with self._lock:
            self.failures += 1
            if producer is not None and producer is self._producer and not self._down:
                self._failed = producer
        log.error("dual_write: event %s not published: %s", envelope.event_id, error)

    def _current_producer(self) -> Producer:
        with self._lock:
            if self._producer is None:
                kafka.ensure_topic(self._bootstrap, kafka.EVENTS_TOPIC,
                                   kafka.EVENTS_PARTITIONS, self._timeout_s)
            elif self._producer is self._failed:
                # Its queued records fail at once (lost, as the variant loses them).
                self._producer.purge()
            if self._producer is None or self._producer is self._failed:
                self._producer = Producer({**kafka.producer_config(
                    self._bootstrap, "dual-write", self._timeout_s), "error_cb": self._on_error})
                threading.Thread(target=self._serve_reports, args=(self._producer,),
                                 name="dual-write-reports", daemon=True).start()
                self._failed, self._down = None, False
            return self._producer

    def _serve_reports(self, producer: Producer) -> None:
        while producer is self._producer:
            producer.poll(0.1)
        producer.flush(self._timeout_s + 1.0)  # a replaced producer's last reports

    def _broker_back(self, producer: Producer) -> bool:
        """While every broker is down, one request per probe interval asks for metadata
        (bounded) and the rest give up at once."""
        with self._lock:
            now = time.monotonic()
            if now < self._next_probe:
                return False
            self._next_probe = now + self._PROBE_INTERVAL_S
        try:
            producer.list_topics(kafka.EVENTS_TOPIC, timeout=self._PROBE_INTERVAL_S)
        except KafkaException:
            return False
        self._down = False
        return True

    def _on_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._down = True
