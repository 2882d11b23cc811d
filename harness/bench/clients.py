"""The harness's own producer and consumer on each broker, for the benches: a RabbitMQ
queue with publisher confirms and manual acks, or a Kafka topic with an idempotent
`acks=all` producer and an assigned consumer. They carry bench bodies only; settings
follow the harness's other clients (harness/brokers/kafka_client.py), which are those of
the reference services where it matters (acks, fetch wait)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pika
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from harness.brokers.kafka_client import READER_FETCH_WAIT_MS, consumer_config, producer_config
from harness.errors import SetupError

KAFKA_BATCH = 500
DELIVERY_TIMEOUT_S = 10.0


class RabbitSender:
    """Persistent messages to one durable queue (declared here), each confirmed by the
    broker before the next is sent, as the reference relay's are (it confirms batches)."""

    def __init__(self, url: str, queue: str) -> None:
        self.queue = queue
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()
        self._channel.queue_declare(queue, durable=True)
        self._channel.confirm_delivery()

    def send(self, body: bytes) -> None:
        self._channel.basic_publish("", self.queue, body,
                                    pika.BasicProperties(delivery_mode=2), mandatory=True)

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()


class RabbitReceiver:
    """Consumes the queue with a prefetch window and acks each message as it arrives."""

    def __init__(self, url: str, queue: str) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()
        self._channel.queue_declare(queue, durable=True)
        self._channel.basic_qos(prefetch_count=1000)
        self._queue = queue
        self._stream: Iterator[Any] | None = None

    def poll(self, timeout_s: float) -> list[bytes]:
        if self._stream is None:
            # One consumer for the whole run; its inactivity timeout is the poll's.
            self._stream = iter(self._channel.consume(self._queue,
                                                      inactivity_timeout=timeout_s))
        method, _properties, body = next(self._stream)
        if method is None:
            return []
        self._channel.basic_ack(method.delivery_tag)
        return [bytes(body)]

    def close(self) -> None:
        if self._connection.is_open:
            if self._stream is not None:
                self._channel.cancel()
            self._connection.close()


class KafkaSender:
    """An idempotent `acks=all` producer; records keyed round-robin over `keys` ids so
    they spread over the partitions as the relay's (keyed by product id) do."""

    def __init__(self, bootstrap: str, topic: str, keys: int = 50, **extra: Any) -> None:
        self.topic = topic
        self._keys = keys
        self._sent = 0
        self._errors: list[str] = []
        self._producer = Producer(producer_config(bootstrap, **extra))

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._errors.append(str(error))

    def send(self, body: bytes) -> None:
        self._producer.produce(self.topic, body, key=str(self._sent % self._keys).encode(),
                               on_delivery=self._on_delivery)
        self._sent += 1
        self._producer.poll(0)  # serve delivery reports as they come
        self._raise_errors()

    def flush(self) -> None:
        """Returns once every record sent has its delivery report."""
        if self._producer.flush(DELIVERY_TIMEOUT_S) > 0:
            raise SetupError(f"Kafka did not confirm every bench record within "
                             f"{DELIVERY_TIMEOUT_S:.0f} s")
        self._raise_errors()

    def _raise_errors(self) -> None:
        if self._errors:
            raise SetupError(f"Kafka refused a bench record: {self._errors[0]}")

    def close(self) -> None:
        self._producer.flush(DELIVERY_TIMEOUT_S)


class KafkaReceiver:
    """Reads every partition of the topic from the given offsets (a group of its own that
    never commits: no rebalance, nothing left behind)."""

    def __init__(self, bootstrap: str, group: str, topic: str,
                 start: dict[int, int]) -> None:
        # Fetch waits as the reference consumer's: the raw figure is the broker at its best
        # setting for a reader that must keep up, not at a setting that starves it.
        self._consumer = Consumer(consumer_config(bootstrap, group, **{
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": READER_FETCH_WAIT_MS}))
        self._consumer.assign([TopicPartition(topic, p, offset)
                               for p, offset in start.items()])

    def poll(self, timeout_s: float) -> list[bytes]:
        bodies: list[bytes] = []
        for message in self._consumer.consume(num_messages=KAFKA_BATCH, timeout=timeout_s):
            error = message.error()
            if error is None:
                bodies.append(bytes(message.value() or b""))
            elif error.code() != KafkaError._PARTITION_EOF:
                raise SetupError(f"the bench consumer got an error from Kafka: {error}")
        return bodies

    def close(self) -> None:
        self._consumer.close()
