"""The consumer when its database connection fails (scenario network_faults_consumer_db):
a batch whose transaction fails is neither acknowledged nor skipped, but retried after a
growing pause, and each event is applied once."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from confluent_kafka import Message, TopicPartition
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import IntegrityError

from harness.contract import envelope as env
from reference_services.common.db import make_engines
from reference_services.consumer.applier import (
    Applier,
    BatchResult,
    DatabaseUnavailable,
    IncomingMessage,
    PartitionPosition,
    db_retry_pause_s,
)
from reference_services.consumer.kafka_worker import KafkaWorker, ReceivedRecord
from reference_services.consumer.models import deliveries, inbox, replica_products
from reference_services.consumer.rabbitmq_worker import RabbitWorker

TOPIC = "product-events"


def upsert(pid: int) -> bytes:
    return env.Envelope(
        event_id=f"evt-{pid}", type=env.PRODUCT_UPSERTED, aggregate_id=str(pid), version=1,
        sequence=pid, occurred_at=1_700_000_000.0, schema_version=env.SCHEMA_VERSION,
        payload={"name": f"p{pid}", "category": "books", "price": 100, "stock": 1,
                 "restricted_note": ""}).encode()


def incoming(*bodies: bytes) -> list[IncomingMessage]:
    return [IncomingMessage(body, False, 1_700_000_001.0) for body in bodies]


def rows(writer: Engine, table: Any) -> int:
    with writer.connect() as conn:
        return len(conn.execute(select(table)).all())


def never_fetch(_pid: int) -> None:
    raise AssertionError("no resync expected")


def fail_statement(writer: Engine, fragment: str, error: Exception, times: int = 1) -> None:
    """Make the next `times` statements containing `fragment` fail with the DB-API
    `error`, as a connection dying mid-transaction does."""
    left = [times]

    @event.listens_for(writer, "before_cursor_execute")
    def _fail(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if fragment in statement and left[0] > 0:
            left[0] -= 1
            raise error


# -- the applier ------------------------------------------------------------------------


def test_a_lost_connection_fails_the_whole_batch_and_its_retry_applies_it_once(
        writer: Engine) -> None:
    applier = Applier(writer, never_fetch)
    fail_statement(writer, "INSERT INTO deliveries",
                   sqlite3.OperationalError("server closed the connection unexpectedly"))
    batch = incoming(upsert(1), upsert(2))
    with pytest.raises(DatabaseUnavailable, match="server closed the connection"):
        applier.apply_batch(batch)
    assert (rows(writer, replica_products), rows(writer, inbox), rows(writer, deliveries)) \
        == (0, 0, 0)
    assert applier.apply_batch(batch).outcomes == ["applied", "applied"]
    # Redelivered once more (its commit's answer lost): the inbox makes it a no-op.
    assert applier.apply_batch(batch).outcomes == ["deduplicated", "deduplicated"]
    assert rows(writer, replica_products) == 2


def test_a_statement_error_is_not_taken_for_a_lost_connection(writer: Engine) -> None:
    # Retrying a statement that is wrong would repeat it for ever: it stays an error.
    applier = Applier(writer, never_fetch)
    fail_statement(writer, "INSERT INTO inbox", sqlite3.IntegrityError("UNIQUE failed"))
    with pytest.raises(IntegrityError):
        applier.apply_batch(incoming(upsert(1)))


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port bound and not listening: every connection to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_an_unreachable_postgres_is_a_database_unavailable(refusing_port: int) -> None:
    engines = make_engines(f"postgresql+psycopg://rch@127.0.0.1:{refusing_port}/orders")
    try:
        assert engines.writer.pool._pre_ping  # a dead pooled connection is replaced
        with pytest.raises(DatabaseUnavailable, match="OperationalError"):
            Applier(engines.writer, never_fetch).apply_batch(incoming(upsert(1)))
    finally:
        engines.writer.dispose()
        engines.reader.dispose()


def test_the_pause_between_retries_doubles_up_to_its_cap() -> None:
    assert [db_retry_pause_s(n) for n in range(1, 8)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5, 0.5]


# -- the workers ----------------------------------------------------------------------------


class FailingApplier(Applier):
    def __init__(self, writer: Engine) -> None:
        super().__init__(writer, never_fetch)

    def apply_batch(self, messages: Sequence[IncomingMessage],
                    positions: Sequence[PartitionPosition] = ()) -> BatchResult:
        raise DatabaseUnavailable("OperationalError: connection refused")


class RecordingChannel:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bool]] = []

    def basic_ack(self, tag: int, multiple: bool = False) -> None:
        self.calls.append(("ack", tag, multiple))

    def basic_nack(self, tag: int, multiple: bool = False, requeue: bool = True) -> None:
        assert requeue
        self.calls.append(("nack", tag, multiple))


@pytest.mark.parametrize(("variant", "calls"), [
    ("none", [("nack", 8, True)]),
    # BUG (variant): acknowledged on receipt, so nothing goes back to the queue: lost.
    ("ack_before_commit", []),
])
def test_rabbitmq_hands_a_failed_batch_back_to_the_queue(
        writer: Engine, variant: str, calls: list[tuple[str, int, bool]]) -> None:
    worker = RabbitWorker(FailingApplier(writer), "amqp://guest:guest@127.0.0.1:1/%2F",
                          "orders", variant=variant)
    channel = RecordingChannel()
    with pytest.raises(DatabaseUnavailable):
        worker._flush(channel, [(7, incoming(upsert(1))[0]), (8, incoming(upsert(2))[0])])
    assert channel.calls == calls  # never acknowledged
    assert worker.stats.retries == 1 and worker.stats.batches == 0


class RecordingConsumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[int, int]] = []
        self.commits = 0

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.partition, tp.offset))

    def commit(self, **_kwargs: Any) -> None:
        self.commits += 1


class RecordingStop:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return False


def test_kafka_reads_a_failed_batch_again_after_a_growing_pause(writer: Engine) -> None:
    worker = KafkaWorker(FailingApplier(writer), "kafka://127.0.0.1:1", "orders")
    consumer, stop = RecordingConsumer(), RecordingStop()
    worker._consumer = consumer  # type: ignore[assignment]
    worker._stop = stop  # type: ignore[assignment]
    for attempt in range(3):
        worker._pending = [ReceivedRecord(Message(topic=TOPIC, partition=p, offset=o,
                                                  value=upsert(o)), p, o, 0.0)
                           for p, o in [(1, 7), (0, 3), (1, 8)]]
        worker._flush()
        # Back to each partition's first record of the batch: nothing skipped.
        assert consumer.seeks[-2:] == [(1, 7), (0, 3)], attempt
    assert stop.waits == [0.05, 0.1, 0.2]
    assert consumer.commits == 0 and worker._pending == []
    assert worker.stats.retries == 3 and worker.stats.batches == 0
    assert worker.stats.last_error.startswith("DatabaseUnavailable")
