"""A consumer's replica read straight from its database, not through its API.

The table and columns are the contract's (harness/contract/replica.py).

- SQLite: the file is opened read-only for each read, with a short busy timeout: the
  consumer writes in WAL mode, so a reader neither blocks it nor waits for it except in the
  rare moments a checkpoint or a recovery holds the file; such a read is retried a few
  times, then reported.
- PostgreSQL (`postgresql+psycopg://`): one short session per read through SQLAlchemy, with
  no pool (nothing of the harness's stays connected between reads), in a read-only
  transaction; MVCC means it never blocks the consumer's writes nor waits for them.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy.pool import NullPool

from harness.contract import replica
from harness.contract.dataset import REPLICATED_FIELDS
from harness.observers import ObservationError

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIX = "postgresql+psycopg://"
BUSY_TIMEOUT_S = 0.2
ATTEMPTS = 3

_QUERY = (f"SELECT {', '.join(replica.COLUMNS)} FROM {replica.TABLE} "
          f"ORDER BY {replica.KEY}")


def sqlite_path(db_url: str) -> Path:
    """The file behind a `sqlite:///<path>` URL (the only kind the harness reads itself)."""
    if not db_url.startswith(SQLITE_PREFIX):
        raise ObservationError(f"cannot read the replica at {db_url}: the harness reads "
                               "replicas from SQLite files (sqlite:///<path>) or PostgreSQL "
                               f"({POSTGRES_PREFIX}...)")
    return Path(db_url[len(SQLITE_PREFIX):])


def read_replica(db_url: str) -> list[dict[str, Any]]:
    """Every row of the replica table, tombstones included, ordered by id; `deleted` is a
    bool. Raises ObservationError when the database cannot be read."""
    if db_url.startswith(POSTGRES_PREFIX):
        return _read_postgres(db_url)
    path = sqlite_path(db_url)
    if not path.exists():
        raise ObservationError(f"replica database {path} does not exist (yet)")
    last: sqlite3.Error | None = None
    for attempt in range(ATTEMPTS):
        try:
            return _read(path)
        except sqlite3.OperationalError as exc:
            # "database is locked" / "no such table" while the consumer creates it: retry.
            last = exc
            time.sleep(0.05 * (attempt + 1))
        except sqlite3.Error as exc:
            last = exc
            break
    raise ObservationError(f"cannot read {replica.TABLE} from {path}: {last}")


def _read(path: Path) -> list[dict[str, Any]]:
    # mode=ro: the harness never writes a service's database, not even by accident.
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                 timeout=BUSY_TIMEOUT_S)
    try:
        rows = connection.execute(_QUERY).fetchall()
    finally:
        connection.close()
    return _as_dicts(rows)


def _as_dicts(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    deleted_at = replica.COLUMNS.index(replica.DELETED)
    return [{**dict(zip(replica.COLUMNS, row, strict=True)), replica.DELETED:
             bool(row[deleted_at])} for row in rows]


def _read_postgres(db_url: str) -> list[dict[str, Any]]:
    # read-only for the whole session: the harness never writes a service's database.
    engine = sqlalchemy.create_engine(
        db_url, poolclass=NullPool,
        connect_args={"connect_timeout": 2,
                      "options": "-c default_transaction_read_only=on"})
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(_QUERY).all()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        # Includes "relation does not exist" while the consumer creates its tables.
        raise ObservationError(f"cannot read {replica.TABLE} from "
                               f"{engine.url.render_as_string(hide_password=True)}: "
                               f"{str(exc).splitlines()[0]}") from exc
    finally:
        engine.dispose()
    return _as_dicts(rows)


def matches_source(source_rows: Iterable[Mapping[str, Any]],
                   replica_rows: Iterable[Mapping[str, Any]]) -> bool:
    """The replica's live rows equal the source's rows, id for id and field for field
    (deletes included: a tombstone counts as absent)."""
    def table(rows: Iterable[Mapping[str, Any]]) -> dict[int, tuple[Any, ...]]:
        return {int(r[replica.KEY]): tuple(r[f] for f in REPLICATED_FIELDS) for r in rows
                if not r.get(replica.DELETED, False)}

    return table(source_rows) == table(replica_rows)
