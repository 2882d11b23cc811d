"""The two bug variants whose consumer lies in its own log (reference_services applier):
the replica shows the lie, the log hides it; and the replica table matches the contract
the harness reads it by."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from harness.contract import envelope as env
from harness.contract import replica
from reference_services.consumer.applier import LIE_STALE_EVERY, Applier, IncomingMessage
from reference_services.consumer.models import deliveries, replica_products

FIELDS: dict[str, Any] = {"name": "lamp", "category": "home", "price": 100, "stock": 10,
                          "restricted_note": ""}


def body(event_id: str, kind: str, version: int, sequence: int, payload: dict[str, Any]
         ) -> IncomingMessage:
    envelope = env.Envelope(event_id, kind, "1", version, sequence, 1_700_000_000.0,
                            env.SCHEMA_VERSION, payload)
    return IncomingMessage(envelope.encode(), False, 1_700_000_001.0)


def stock_of(writer: Engine) -> tuple[int, int]:
    with writer.connect() as conn:
        row = conn.execute(select(replica_products.c.stock, replica_products.c.version)).one()
    return int(row.stock), int(row.version)


def outcomes(writer: Engine) -> list[str]:
    with writer.connect() as conn:
        return list(conn.execute(select(deliveries.c.outcome).order_by(deliveries.c.id))
                    .scalars())


def no_fetch(_pid: int) -> None:
    raise AssertionError("no resync expected")


def test_log_lies_dedupe_applies_a_redelivered_delta_and_logs_it_deduplicated(
        writer: Engine) -> None:
    applier = Applier(writer, no_fetch, "log_lies_dedupe")
    delta = body("d", env.STOCK_ADJUSTED, 2, 2, {"delta": 5, "stock": 15})
    applier.apply_batch([body("u", env.PRODUCT_UPSERTED, 1, 1, FIELDS), delta])
    applier.apply_batch([delta])
    assert stock_of(writer) == (20, 2)  # applied twice, version unchanged
    assert outcomes(writer) == ["applied", "applied", "deduplicated"]


def test_log_lies_stale_drops_every_nth_event_and_logs_it_stale(writer: Engine) -> None:
    applier = Applier(writer, no_fetch, "log_lies_stale")
    applier.apply_batch([body("u", env.PRODUCT_UPSERTED, 1, LIE_STALE_EVERY - 1, FIELDS),
                         body("d", env.STOCK_ADJUSTED, 2, LIE_STALE_EVERY,
                              {"delta": 5, "stock": 15})])
    assert stock_of(writer) == (10, 1)  # never applied
    assert outcomes(writer) == ["applied", "stale"]


def test_the_reference_replica_table_is_the_contracts() -> None:
    assert replica_products.name == replica.TABLE
    assert set(replica.COLUMNS) <= {c.name for c in replica_products.columns}
    assert replica_products.c[replica.KEY].primary_key
