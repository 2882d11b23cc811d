"""The raw database's write-transaction rate: single-row insert transactions, one after
another from one connection, on the database the services would use, with the services'
durability settings. It is the floor the publisher's writes (a product row and an outbox
row per transaction, behind an HTTP API) are set against.

- SQLite: a WAL file in a temporary directory, `synchronous=NORMAL` as the services open
  theirs (durable against a killed process, which is what the scenarios inject);
- PostgreSQL: a private server started as the scenarios start it (PostgresNode, fsync and
  synchronous_commit on).

Bounded twice: `count` transactions or `budget_s` seconds, whichever comes first.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg

from harness.runtime.postgres_node import DB_USER, PostgresNode
from harness.runtime.rabbitmq_node import process_env

# About the size of a product row with its outbox event.
BODY = "x" * 300
BUDGET_S = 20.0
TABLE = "bench_writes"


@dataclass(frozen=True)
class DbRate:
    db: str
    transactions: int  # committed
    seconds: float

    @property
    def per_s(self) -> float:
        return round(self.transactions / self.seconds, 1) if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        # Rounded only here: a few dozen commits can take well under a millisecond, and a
        # rate from a duration rounded to 0 would read as none at all.
        return {**asdict(self), "seconds": round(self.seconds, 6), "per_s": self.per_s}


def timed_transactions(commit_one: Callable[[], None], count: int, budget_s: float,
                       clock: Callable[[], float] = time.perf_counter) -> tuple[int, float]:
    """Commit up to `count` transactions within `budget_s`: (committed, seconds taken)."""
    began = clock()
    done = 0
    while done < count and clock() - began < budget_s:
        commit_one()
        done += 1
    return done, clock() - began


def sqlite_rate_at(path: Path, count: int, budget_s: float = BUDGET_S) -> DbRate:
    """Into a new SQLite file at `path` (left in place)."""
    # Autocommit mode: each transaction is the explicit BEGIN ... COMMIT below.
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")

        def commit_one() -> None:
            # IMMEDIATE takes the write lock at BEGIN, as the services' writers do.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"INSERT INTO {TABLE} (body) VALUES (?)", (BODY,))
            conn.execute("COMMIT")

        done, seconds = timed_transactions(commit_one, count, budget_s)
    finally:
        conn.close()
    return DbRate("sqlite", done, seconds)


def sqlite_rate(count: int, budget_s: float = BUDGET_S) -> DbRate:
    with tempfile.TemporaryDirectory(prefix="rch-raw-db-") as directory:
        return sqlite_rate_at(Path(directory) / "raw.db", count, budget_s)


def postgres_rate(work_dir: Path, count: int, budget_s: float = BUDGET_S) -> DbRate:
    node = PostgresNode("raw-postgres", work_dir, process_env(work_dir))
    try:
        node.start()
        node.database("bench")  # created empty
        with psycopg.connect(f"host=127.0.0.1 port={node.port} user={DB_USER} dbname=bench",
                             autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {TABLE} (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)")

            def commit_one() -> None:
                with conn.transaction():
                    conn.execute(f"INSERT INTO {TABLE} (body) VALUES (%s)", (BODY,))

            done, seconds = timed_transactions(commit_one, count, budget_s)
    finally:
        node.close()
    return DbRate("postgres", done, seconds)


def raw_write_rate(db: str, work_dir: Path, count: int) -> DbRate:
    return postgres_rate(work_dir, count) if db == "postgres" else sqlite_rate(count)
