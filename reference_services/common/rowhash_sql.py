"""The dataset hash and range hashes as SQL aggregates over a table with h1/h2 columns.

Both services' tables carry `id`, `category`, `deleted`, `h1`, `h2`; these functions give
the same answers as `dataset.summarize` over the same rows, without reading them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, func, select

from harness.contract.dataset import combine


def _live(table: Table) -> Any:
    return table.c.deleted.is_(False)


def table_summary(conn: Connection, table: Table) -> dict[str, Any]:
    count, s1, s2 = conn.execute(
        select(func.count(), func.coalesce(func.sum(table.c.h1), 0),
               func.coalesce(func.sum(table.c.h2), 0)).where(_live(table))).one()
    categories: dict[str, int] = dict(conn.execute(
        select(table.c.category, func.count()).where(_live(table))
        .group_by(table.c.category).order_by(table.c.category)).all())
    return {"count": int(count), "categories": categories, "hash": combine(int(s1), int(s2))}


def range_summary(conn: Connection, table: Table, lo: int, hi: int) -> dict[str, Any]:
    """count and hash of live rows with lo <= id < hi."""
    count, s1, s2 = conn.execute(
        select(func.count(), func.coalesce(func.sum(table.c.h1), 0),
               func.coalesce(func.sum(table.c.h2), 0))
        .where(_live(table), table.c.id >= lo, table.c.id < hi)).one()
    return {"lo": lo, "hi": hi, "count": int(count), "hash": combine(int(s1), int(s2))}


def id_bounds(conn: Connection, table: Table) -> tuple[int, int]:
    """[lo, hi) covering every id ever stored (live or deleted)."""
    lo, hi = conn.execute(select(func.min(table.c.id), func.max(table.c.id))).one()
    return (int(lo), int(hi) + 1) if lo is not None else (0, 0)
