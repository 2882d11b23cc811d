"""SQLAlchemy engines for the services' local databases.

SQLite is the embedded default. Two engines share one file: writes start with
BEGIN IMMEDIATE so two writers queue on the busy timeout instead of failing with
"database is locked" when a read transaction tries to upgrade; reads use plain BEGIN and,
thanks to WAL, never block the writer.

PostgreSQL (`postgresql+psycopg://`, psycopg 3): readers run REPEATABLE READ, so every
statement of a read transaction (a summary and its high-water mark, an export) sees one
snapshot, as a SQLite read transaction does. Writers run READ COMMITTED and, by default,
one at a time per database, as on SQLite: each write transaction first takes a
transaction-level advisory lock. The consumer relies on that (its batches read rows,
decide, and write them back, from any of its processes). A service whose writers lock
what they change themselves can run them concurrently (`serial_writers=False`: the
publisher, whose outbox readers then cope with commits out of sequence order).

A PostgreSQL connection can die under a service (the server restarted, the network reset
it): each pooled connection is tested before use (pool_pre_ping) and replaced if dead, so
one broken connection costs one failed transaction, not every later one. A new
connection gives up after CONNECT_TIMEOUT_S instead of waiting on an unanswering server
for ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event

# Advisory lock keys are per database, so one key serves every service.
WRITER_LOCK = 0x52434831  # "RCH1"
CONNECT_TIMEOUT_S = 5


@dataclass(frozen=True)
class Engines:
    writer: Engine
    reader: Engine


def _sqlite_engine(url: str, begin: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                           pool_size=8, max_overflow=8)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against a process crash (kill -9), which is what we inject.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def make_engines(url: str, serial_writers: bool = True) -> Engines:
    if url.startswith("sqlite"):
        # SQLite has one writer at a time whatever is asked.
        return Engines(writer=_sqlite_engine(url, "BEGIN IMMEDIATE"),
                       reader=_sqlite_engine(url, "BEGIN"))
    resilient: dict[str, Any] = {"pool_pre_ping": True,
                                 "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    writer = create_engine(url, pool_size=8, max_overflow=8, **resilient)
    if serial_writers:
        @event.listens_for(writer, "begin")
        def _one_writer(conn: Any) -> None:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK})")

    # An engine of its own: the writers' lock must not apply to readers.
    reader = create_engine(url, pool_size=8, max_overflow=8,
                           isolation_level="REPEATABLE READ", **resilient)
    return Engines(writer=writer, reader=reader)
