"""Kafka offset bookkeeping in the consumer: positions stored in the batch's own
transaction, computed from the batch, and checked against the log on assignment."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, Message
from sqlalchemy import Engine, select

from harness.contract import envelope as env
from reference_services.consumer import applier as applier_module
from reference_services.consumer.applier import Applier, IncomingMessage, PartitionPosition
from reference_services.consumer.kafka_worker import (
    ReceivedRecord,
    digest,
    log_ends_before,
    positions_after,
    record_problem,
)
from reference_services.consumer.models import consumer_offsets, inbox, replica_products

TOPIC = "product-events"


def upsert(pid: int, version: int = 1) -> bytes:
    return env.Envelope(
        event_id=f"evt-{pid}-{version}", type=env.PRODUCT_UPSERTED, aggregate_id=str(pid),
        version=version, sequence=pid * 100 + version, occurred_at=1_700_000_000.0,
        schema_version=env.SCHEMA_VERSION,
        payload={"name": f"p{pid}", "category": "books", "price": 100, "stock": 1,
                 "restricted_note": ""}).encode()


def incoming(*bodies: bytes) -> list[IncomingMessage]:
    return [IncomingMessage(body, False, 1_700_000_001.0) for body in bodies]


def stored(writer: Engine) -> dict[int, tuple[int, str]]:
    with writer.connect() as conn:
        rows = conn.execute(select(consumer_offsets)).all()
    return {row.partition: (row.next_offset, row.last_digest) for row in rows}


def count(writer: Engine, table: Any) -> int:
    with writer.connect() as conn:
        return len(conn.execute(select(table)).all())


def never_fetch(_pid: int) -> None:
    raise AssertionError("no resync expected")


@pytest.fixture
def applier(writer: Engine) -> Applier:
    return Applier(writer, never_fetch)


def test_a_batch_stores_its_positions_with_its_effects(applier: Applier,
                                                       writer: Engine) -> None:
    positions = [PartitionPosition(TOPIC, 0, 8, "a" * 64), PartitionPosition(TOPIC, 3, 2, "b" * 64)]
    applier.apply_batch(incoming(upsert(1), upsert(2)), positions)
    assert stored(writer) == {0: (8, "a" * 64), 3: (2, "b" * 64)}
    assert count(writer, replica_products) == 2


def test_a_later_batch_moves_only_the_partitions_it_read(applier: Applier,
                                                         writer: Engine) -> None:
    applier.apply_batch(incoming(upsert(1)), [PartitionPosition(TOPIC, 0, 8, "a" * 64),
                                              PartitionPosition(TOPIC, 1, 5, "b" * 64)])
    applier.apply_batch(incoming(upsert(2)), [PartitionPosition(TOPIC, 1, 9, "c" * 64)])
    assert stored(writer) == {0: (8, "a" * 64), 1: (9, "c" * 64)}


def test_without_positions_nothing_is_stored(applier: Applier, writer: Engine) -> None:
    """The RabbitMQ path (and the variants that keep no positions) pass none."""
    applier.apply_batch(incoming(upsert(1)))
    assert stored(writer) == {}
    assert count(writer, replica_products) == 1


class CrashBeforeCommit(Exception):
    pass


class CrashingPoints:
    """Stands in for the crash points: "dies" (raises) where the real one SIGKILLs, which
    leaves the transaction as uncommitted as the kill does."""

    def hit(self, point: str) -> None:
        if point == "consumer.before_commit":
            raise CrashBeforeCommit(point)


def test_a_crash_before_commit_leaves_neither_effects_nor_positions(
        applier: Applier, writer: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    applier.apply_batch(incoming(upsert(1)), [PartitionPosition(TOPIC, 0, 4, "a" * 64)])
    monkeypatch.setattr(applier_module, "CRASH_POINTS", CrashingPoints())
    with pytest.raises(CrashBeforeCommit):
        applier.apply_batch(incoming(upsert(2), upsert(1, 2)),
                            [PartitionPosition(TOPIC, 0, 6, "b" * 64),
                             PartitionPosition(TOPIC, 2, 1, "c" * 64)])
    assert stored(writer) == {0: (4, "a" * 64)}
    assert count(writer, replica_products) == 1
    assert count(writer, inbox) == 1


def record(partition: int, offset: int, value: bytes) -> Message:
    return Message(topic=TOPIC, partition=partition, offset=offset, value=value)


def test_positions_follow_each_partitions_last_record() -> None:
    batch = [ReceivedRecord(record(p, o, v), p, o, 0.0)
             for p, o, v in [(1, 7, b"x"), (0, 3, b"y"), (1, 8, b"z"), (0, 4, b"w")]]
    assert positions_after(TOPIC, batch) == [
        PartitionPosition(TOPIC, 0, 5, digest(b"w")),
        PartitionPosition(TOPIC, 1, 9, digest(b"z")),
    ]


def test_the_record_before_the_position_proves_the_log_unchanged() -> None:
    position = PartitionPosition(TOPIC, 2, 10, digest(b"applied"))
    assert record_problem(position, record(2, 9, b"applied")) is None


@pytest.mark.parametrize("offset, value", [(9, b"another record"), (12, b"applied")])
def test_another_record_there_means_the_log_was_replaced(offset: int, value: bytes) -> None:
    position = PartitionPosition(TOPIC, 2, 10, digest(b"applied"))
    problem = record_problem(position, record(2, offset, value))
    assert problem is not None and problem[0] == "log_replaced"
    assert f"offset {offset}" in problem[1]


def test_an_out_of_range_answer_is_data_loss() -> None:
    position = PartitionPosition(TOPIC, 2, 10, digest(b"applied"))
    message = Message(topic=TOPIC, partition=2, error=KafkaError(KafkaError._AUTO_OFFSET_RESET))
    problem = record_problem(position, message)
    assert problem is not None and problem[0] == "offset_out_of_range"


def test_a_log_that_ends_before_the_position_is_truncated() -> None:
    problem = log_ends_before(PartitionPosition(TOPIC, 1, 30, digest(b"applied")), 4)
    assert problem[0] == "log_truncated"
    assert "ends at offset 4, before offset 29" in problem[1]
