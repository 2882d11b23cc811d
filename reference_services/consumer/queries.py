"""Read side of the Order service: replica snapshot and export, counters, lag, orders."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, func, select

from harness.contract.dataset import REPLICATED_FIELDS
from reference_services.common.rowhash_sql import id_bounds, ranges_summary, table_summary
from reference_services.consumer.models import (
    OUTCOMES,
    dead_letters,
    deliveries,
    orders,
    replica_products,
)


def _live_rows(engine: Engine) -> Iterator[tuple[int, dict[str, Any]]]:
    with engine.connect() as conn:
        rows = conn.execute(select(replica_products)
                            .where(replica_products.c.deleted.is_(False))
                            .order_by(replica_products.c.id))
        for row in rows:
            yield row.id, {f: getattr(row, f) for f in REPLICATED_FIELDS}


def replica_snapshot(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {**table_summary(conn, replica_products),
                "id_range": list(id_bounds(conn, replica_products))}


def replica_range_hashes(engine: Engine, bounds: list[tuple[int, int]]) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        return ranges_summary(conn, replica_products, bounds)


def replica_rows(engine: Engine, ids: list[int]) -> list[dict[str, Any]]:
    """The live replica rows among these ids."""
    with engine.connect() as conn:
        rows = conn.execute(select(replica_products).where(
            replica_products.c.id.in_(ids), replica_products.c.deleted.is_(False))).all()
    return [{"id": r.id, **{f: getattr(r, f) for f in REPLICATED_FIELDS}} for r in rows]


def replica_export(engine: Engine) -> list[dict[str, Any]]:
    return [{"id": pid, **row} for pid, row in _live_rows(engine)]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def counters(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        by_outcome: dict[str, int] = dict(conn.execute(select(deliveries.c.outcome, func.count())
                                       .group_by(deliveries.c.outcome)).all())
        redelivered = conn.execute(select(func.count()).select_from(deliveries)
                                   .where(deliveries.c.redelivered.is_(True))).scalar_one()
        dead = conn.execute(select(func.count()).select_from(dead_letters)).scalar_one()
        recent = conn.execute(select(deliveries.c.committed_at - deliveries.c.occurred_at)
                              .where(deliveries.c.occurred_at.is_not(None))
                              .order_by(deliveries.c.id.desc()).limit(1000)).scalars().all()
        newest = conn.execute(select(func.max(deliveries.c.occurred_at))).scalar_one()
    lags_ms = sorted(max(0.0, v) * 1000 for v in recent)
    return {
        **{o: int(by_outcome.get(o, 0)) for o in OUTCOMES},
        "redelivered": int(redelivered),
        "dead_letter_records": int(dead),
        "lag_ms": {"p50": _percentile(lags_ms, 0.5), "p99": _percentile(lags_ms, 0.99)},
        # Age of the newest event applied: grows while the consumer is down or behind.
        "staleness_s": (time.time() - newest) if newest else None,
    }


def deliveries_after(engine: Engine, after: int, limit: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(deliveries).where(deliveries.c.id > after)
                            .order_by(deliveries.c.id).limit(limit)).all()
    return [dict(row._mapping) for row in rows]


def dead_letter_list(engine: Engine, limit: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(dead_letters).order_by(dead_letters.c.id)
                            .limit(limit)).all()
    return [{"id": r.id, "reason": r.reason, "raw": r.raw[:1000].decode("utf-8", "replace"),
             "size": len(r.raw), "first_seen": r.first_seen, "last_seen": r.last_seen,
             "attempts": r.attempts} for r in rows]


def order_history(engine: Engine) -> list[dict[str, Any]]:
    """Why the replica exists: orders joined locally with the replicated product names."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(orders.c.id, orders.c.product_id, orders.c.quantity, orders.c.created_at,
                   replica_products.c.name, replica_products.c.price)
            .join(replica_products, replica_products.c.id == orders.c.product_id, isouter=True)
            .order_by(orders.c.id)).all()
    return [dict(row._mapping) for row in rows]
