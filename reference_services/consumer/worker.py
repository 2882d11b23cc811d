"""What the Order service needs from the broker worker that feeds its applier, whichever
broker it reads (rabbitmq_worker.RabbitWorker, kafka_worker.KafkaWorker)."""

from __future__ import annotations

from typing import Any, Protocol


class WorkerStatus(Protocol):
    @property
    def connected(self) -> bool:
        """Subscribed and able to receive (RabbitMQ: consuming; Kafka: partitions assigned)."""


class Worker(Protocol):
    @property
    def stats(self) -> WorkerStatus: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> dict[str, Any]:
        """The worker's part of GET /health."""
