"""The dataset hash and range hashes as SQL aggregates over a table with h1/h2 columns.

Both services' tables carry `id`, `category`, `deleted`, `h1`, `h2`; these functions give
the same answers as `dataset.summarize` over the same rows, without reading them. `parts`
names another pair of digest columns of the table (the publisher's `p1`, `p2`: the rows as
a caller without the restricted fields' grant sees them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Select, Table, and_, column, func, select, values

from harness.contract.dataset import combine


def _live(table: Table) -> Any:
    return table.c.deleted.is_(False)


HASH_PARTS = ("h1", "h2")


def table_summary(conn: Connection, table: Table,
                  parts: tuple[str, str] = HASH_PARTS) -> dict[str, Any]:
    first, second = (table.c[p] for p in parts)
    count, s1, s2 = conn.execute(
        select(func.count(), func.coalesce(func.sum(first), 0),
               func.coalesce(func.sum(second), 0)).where(_live(table))).one()
    categories: dict[str, int] = dict(conn.execute(
        select(table.c.category, func.count()).where(_live(table))
        .group_by(table.c.category).order_by(table.c.category)).all())
    return {"count": int(count), "categories": categories, "hash": combine(int(s1), int(s2))}


def range_summary(conn: Connection, table: Table, lo: int, hi: int) -> dict[str, Any]:
    """count and hash of live rows with lo <= id < hi."""
    return ranges_summary(conn, table, [(lo, hi)])[0]


def ranges_summary(conn: Connection, table: Table, bounds: Sequence[tuple[int, int]],
                   parts: tuple[str, str] = HASH_PARTS) -> list[dict[str, Any]]:
    """`range_summary` of every [lo, hi) in `bounds`, in one statement, in the order asked."""
    if not bounds:
        return []
    rows = conn.execute(ranges_statement(table, bounds, parts)).all()
    return [{"lo": lo, "hi": hi, "count": int(count), "hash": combine(int(s1), int(s2))}
            for (lo, hi), (_, count, s1, s2) in zip(bounds, rows, strict=True)]


def ranges_statement(table: Table, bounds: Sequence[tuple[int, int]],
                     parts: tuple[str, str] = HASH_PARTS) -> Select[Any]:
    """(index, count, sum h1, sum h2) of the live rows of each range, ordered by index.

    The ranges go in as a VALUES list, and each aggregate is a subquery correlated to its
    range on `lo <= id < hi`, so the database walks the primary key over each range's rows
    (SQLite: SEARCH ... USING INTEGER PRIMARY KEY (rowid>? AND rowid<?); PostgreSQL: an
    index scan on the primary key per range): a level of bisection costs the rows inside
    its ranges and one statement, not a statement per range. Two plainer forms cost more
    on SQLite: a join with `deleted` in its condition made it build an index on `deleted`
    and read every live row once per range (9 s for 1,600 ranges of 100k rows); a join
    grouped by range sorted every joined row for the GROUP BY (0.30 s for 256 ranges
    covering a million rows, against 0.16 s this way and 0.09 s for one plain sum).
    """
    asked = values(column("i", Integer), column("lo", Integer), column("hi", Integer),
                   name="asked").data([(i, lo, hi) for i, (lo, hi) in enumerate(bounds)]
                                      ).cte("asked")
    inside = and_(table.c.id >= asked.c.lo, table.c.id < asked.c.hi, _live(table))

    def over_range(aggregate: Any) -> Any:
        return select(aggregate).where(inside).correlate(asked).scalar_subquery()

    first, second = (table.c[p] for p in parts)
    return select(asked.c.i, over_range(func.count()),
                  over_range(func.coalesce(func.sum(first), 0)),
                  over_range(func.coalesce(func.sum(second), 0))).order_by(asked.c.i)


def id_bounds(conn: Connection, table: Table) -> tuple[int, int]:
    """[lo, hi) covering every id ever stored (live or deleted)."""
    lo, hi = conn.execute(select(func.min(table.c.id), func.max(table.c.id))).one()
    return (int(lo), int(hi) + 1) if lo is not None else (0, 0)
