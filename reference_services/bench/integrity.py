"""`harness bench integrity`: what the integrity check and bisection cost at scale.

For each dataset size, two SQLite files get the real `products` and `replica_products`
schemas (engines from `make_engines`, so WAL and pragmas are the production ones) and the
same N rows with their h1/h2. Measured:
- verification: `table_summary` on both sides, the check the verifier runs every interval
  (target: at most 2 s for a million rows);
- bisection: for each k, k replica rows are damaged (a field changed, the row tombstoned,
  the row removed, or an extra row added), `bisect_divergent` runs over in-process range
  hashes, and the ids it finds must be exactly the damaged ones; comparisons, round trips
  and seconds are recorded, then the damage is undone for the next k.
Generating and inserting the rows is reported separately as setup: it is not part of
either check.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table

from harness.contract.dataset import REPLICATED_FIELDS, row_hash_parts
from harness.workload.generator import CATEGORIES, WORDS
from reference_services.common.db import Engines, make_engines
from reference_services.common.rowhash_sql import id_bounds, ranges_summary, table_summary
from reference_services.consumer import models as consumer_models
from reference_services.consumer.integrity import (
    FIRST_LEVEL,
    RangeHashes,
    bisect_divergent,
    verify,
)
from reference_services.publisher import models as publisher_models

_COLUMNS = ("id", *REPLICATED_FIELDS, "deleted", "h1", "h2")
_INSERT_CHUNK = 10_000
_VERIFY_REPEATS = 3

Row = tuple[Any, ...]
"""A row as inserted: values in `_COLUMNS` order."""


def sql_range_hashes(engine: Engine, table: Table) -> RangeHashes:
    """RangeHashes over `table` in-process: what GET /ranges does, minus HTTP.

    One statement per batched call, as the services do, so every range of a level is
    answered from the same snapshot even while writes continue.
    """

    def ranges(bounds: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        with engine.begin() as conn:
            return ranges_summary(conn, table, bounds)

    return ranges


def _fields(rng: random.Random) -> dict[str, Any]:
    return {
        "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {rng.randrange(10**6)}",
        "category": rng.choice(CATEGORIES),
        "price": rng.randrange(100, 100_000),
        "stock": rng.randrange(0, 500),
        "restricted_note": f"supplier-cost-{rng.randrange(10**4)}",
        "version": rng.randint(1, 5),
    }


def _row(product_id: int, fields: dict[str, Any], deleted: bool = False) -> Row:
    h1, h2 = row_hash_parts(product_id, fields)
    return (product_id, *(fields[f] for f in REPLICATED_FIELDS), deleted, h1, h2)


def generate_rows(rng: random.Random, n: int) -> list[Row]:
    return [_row(product_id, _fields(rng)) for product_id in range(1, n + 1)]


def _insert_sql(table: Table) -> str:
    return (f"INSERT INTO {table.name} ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in _COLUMNS)})")


def bulk_insert(engines: Engines, table: Table, rows: Sequence[Row]) -> None:
    # Straight to the DBAPI's executemany: SQLAlchemy's per-row parameter handling would
    # dominate setup at a million rows, and setup is not what is being measured.
    sql = _insert_sql(table)
    with engines.writer.begin() as conn:
        for start in range(0, len(rows), _INSERT_CHUNK):
            conn.exec_driver_sql(sql, list(rows[start:start + _INSERT_CHUNK]))
    # Fold the WAL back into the database so the checks read it the way a long-running
    # service would, not through a WAL the size of the table. On the raw connection: the
    # engine's "begin" hook would wrap it in a transaction, where a checkpoint cannot run.
    raw = engines.writer.raw_connection()
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()


@dataclass
class _Side:
    engines: Engines
    table: Table

    def summary(self) -> dict[str, Any]:
        with self.engines.reader.begin() as conn:
            return {**table_summary(conn, self.table),
                    "id_range": list(id_bounds(conn, self.table))}

    def id_range(self) -> tuple[int, int]:
        with self.engines.reader.begin() as conn:
            return id_bounds(conn, self.table)


@contextmanager
def _databases(work_dir: Path | None) -> Iterator[tuple[_Side, _Side]]:
    directory = Path(tempfile.mkdtemp(prefix="integrity-bench-", dir=work_dir))
    source = make_engines(f"sqlite:///{directory / 'publisher.db'}")
    replica = make_engines(f"sqlite:///{directory / 'consumer.db'}")
    try:
        publisher_models.metadata.create_all(source.writer)
        consumer_models.metadata.create_all(replica.writer)
        yield (_Side(source, publisher_models.products),
               _Side(replica, consumer_models.replica_products))
    finally:
        for engines in (source, replica):
            engines.writer.dispose()
            engines.reader.dispose()
        shutil.rmtree(directory, ignore_errors=True)


def _damage(replica: _Side, rng: random.Random, rows: Sequence[Row], k: int,
            ) -> tuple[list[int], Callable[[], None]]:
    """Damage k replica rows in the four ways replication can go wrong; returns the damaged
    ids and a function that undoes it (so each k starts from an identical replica)."""
    table = replica.table.name
    n = len(rows)
    targets = rng.sample(range(1, n + 1), k)
    changed: list[int] = []
    extras: list[int] = []
    with replica.engines.writer.begin() as conn:
        for i, product_id in enumerate(targets):
            original = rows[product_id - 1]
            kind = i % 4
            if kind == 0:  # a lost or misapplied update
                fields = dict(zip(REPLICATED_FIELDS, original[1:7], strict=True))
                fields["price"] += 1
                h1, h2 = row_hash_parts(product_id, fields)
                conn.exec_driver_sql(f"UPDATE {table} SET price = ?, h1 = ?, h2 = ? "
                                     "WHERE id = ?", (fields["price"], h1, h2, product_id))
                changed.append(product_id)
            elif kind == 1:  # a delete applied that the source never made
                conn.exec_driver_sql(f"UPDATE {table} SET deleted = 1 WHERE id = ?",
                                     (product_id,))
                changed.append(product_id)
            elif kind == 2:  # a create never applied
                conn.exec_driver_sql(f"DELETE FROM {table} WHERE id = ?", (product_id,))
                changed.append(product_id)
            else:  # a row the source does not have, past its highest id
                extra_id = n + 1 + len(extras)
                conn.exec_driver_sql(_insert_sql(replica.table),
                                     _row(extra_id, _fields(rng)))
                extras.append(extra_id)

    def undo() -> None:
        with replica.engines.writer.begin() as conn:
            for product_id in changed:
                conn.exec_driver_sql(f"DELETE FROM {table} WHERE id = ?", (product_id,))
                conn.exec_driver_sql(_insert_sql(replica.table), rows[product_id - 1])
            for extra_id in extras:
                conn.exec_driver_sql(f"DELETE FROM {table} WHERE id = ?", (extra_id,))

    return sorted(changed + extras), undo


def _bench_size(n: int, divergent: Sequence[int], work_dir: Path | None, fanout: int,
                first_level: int, seed: int, progress: Callable[[str], None],
                ) -> dict[str, Any]:
    rng = random.Random(f"{seed}:{n}")
    began = time.perf_counter()
    rows = generate_rows(rng, n)
    generate_s = time.perf_counter() - began
    progress(f"{n:,} rows: generated in {generate_s:.2f} s")
    with _databases(work_dir) as (source, replica):
        began = time.perf_counter()
        bulk_insert(source.engines, source.table, rows)
        bulk_insert(replica.engines, replica.table, rows)
        insert_s = time.perf_counter() - began
        progress(f"{n:,} rows: inserted into both databases in {insert_s:.2f} s")

        # Median of a few runs: the first pays for cold pages, later ones show steady state.
        source_times: list[float] = []
        replica_times: list[float] = []
        for _ in range(_VERIFY_REPEATS):
            t0 = time.perf_counter()
            ours = source.summary()
            t1 = time.perf_counter()
            theirs = replica.summary()
            t2 = time.perf_counter()
            source_times.append(t1 - t0)
            replica_times.append(t2 - t1)
        summary = verify(ours, theirs)
        if not summary.in_sync:
            raise AssertionError(f"identical datasets did not verify: {summary.description}")
        verify_source_s = statistics.median(source_times)
        verify_replica_s = statistics.median(replica_times)
        progress(f"{n:,} rows: verification {verify_source_s + verify_replica_s:.3f} s "
                 f"({summary.description})")

        source_hashes = sql_range_hashes(source.engines.reader, source.table)
        replica_hashes = sql_range_hashes(replica.engines.reader, replica.table)
        runs: list[dict[str, Any]] = []
        for k in divergent:
            if not 0 <= k <= n:
                raise ValueError(f"cannot damage {k} rows of {n}")
            expected, undo = _damage(replica, rng, rows, k)
            try:
                # The search range is the union of both sides' ids, as a real caller would
                # take it from the two snapshots, so rows only the replica has are inside.
                (source_lo, source_hi), (replica_lo, replica_hi) = (
                    source.id_range(), replica.id_range())
                lo, hi = min(source_lo, replica_lo), max(source_hi, replica_hi)
                began = time.perf_counter()
                result = bisect_divergent(source_hashes, replica_hashes, lo, hi, fanout=fanout,
                                          first_level=first_level)
                seconds = time.perf_counter() - began
            finally:
                undo()
            if list(result.divergent_ids) != expected:
                raise AssertionError(f"bisection found {list(result.divergent_ids)[:20]}, "
                                     f"damaged {expected[:20]} (k={k}, n={n})")
            runs.append({"k": k, "comparisons": result.comparisons,
                         "round_trips": result.round_trips, "seconds": round(seconds, 4),
                         "ranges_per_level": list(result.ranges_checked_per_level)})
            progress(f"{n:,} rows: k={k} found in {result.comparisons} comparisons, "
                     f"{result.round_trips} round trips, {seconds:.3f} s")
    return {"rows": n, "generate_s": round(generate_s, 3), "insert_s": round(insert_s, 3),
            "setup_s": round(generate_s + insert_s, 3),
            "verify_s": round(verify_source_s + verify_replica_s, 4),
            "verify_source_s": round(verify_source_s, 4),
            "verify_replica_s": round(verify_replica_s, 4),
            "bisection": runs}


def format_table(results: dict[str, Any]) -> str:
    """The human-readable table the CLI prints."""
    lines = [f"integrity bench (fanout {results['fanout']}, first level "
             f"{results['first_level']} ranges; verification = table_summary on both sides, "
             f"median of {results['verify_repeats']})",
             f"{'rows':>10} {'setup s':>8} {'verify s':>9} {'k':>5} {'comparisons':>12} "
             f"{'round trips':>12} {'bisect s':>9}"]
    for size in results["sizes"]:
        head = (f"{size['rows']:>10,} {size['setup_s']:>8.2f} {size['verify_s']:>9.3f}")
        blank = " " * len(head)
        for i, run in enumerate(size["bisection"] or [None]):
            prefix = head if i == 0 else blank
            if run is None:
                lines.append(prefix)
                continue
            lines.append(f"{prefix} {run['k']:>5} {run['comparisons']:>12} "
                         f"{run['round_trips']:>12} {run['seconds']:>9.3f}")
    return "\n".join(lines)


def run_integrity_bench(sizes: Sequence[int] = (100_000, 1_000_000),
                        divergent: Sequence[int] = (1, 10, 100), work_dir: Path | None = None,
                        progress: Callable[[str], None] = print, *, fanout: int = 16,
                        first_level: int = FIRST_LEVEL, seed: int = 0) -> dict[str, Any]:
    """Run the benchmark for every size; returns JSON-serialisable figures and prints the
    table through `progress`. Raises AssertionError if bisection ever finds anything but
    exactly the damaged ids, since fast wrong answers are worth nothing."""
    results: dict[str, Any] = {"fanout": fanout, "first_level": first_level,
                               "verify_repeats": _VERIFY_REPEATS, "sizes": []}
    for n in sizes:
        results["sizes"].append(_bench_size(n, divergent, work_dir, fanout, first_level, seed,
                                            progress))
    progress(format_table(results))
    return results


def _int_list(text: str) -> list[int]:
    try:
        return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")\
            from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference_services.bench.integrity",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=_int_list, default=[100_000, 1_000_000],
                        help="comma-separated dataset sizes (default 100000,1000000)")
    parser.add_argument("--divergent", type=_int_list, default=[1, 10, 100],
                        help="comma-separated numbers of damaged rows (default 1,10,100)")
    parser.add_argument("--fanout", type=int, default=16)
    parser.add_argument("--first-level", type=int, default=FIRST_LEVEL,
                        help=f"ranges the search starts from (default {FIRST_LEVEL}, as the "
                             "verifier; 1: the whole range)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where to put the temporary databases (default: system temp)")
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    results = run_integrity_bench(args.sizes, args.divergent, args.work_dir,
                                  fanout=args.fanout, first_level=args.first_level,
                                  seed=args.seed)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
