"""SQLAlchemy engines for the services' local databases.

SQLite is the embedded default. Two engines share one file: writes start with
BEGIN IMMEDIATE so two writers queue on the busy timeout instead of failing with
"database is locked" when a read transaction tries to upgrade; reads use plain BEGIN and,
thanks to WAL, never block the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event


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


def make_engines(url: str) -> Engines:
    if url.startswith("sqlite"):
        return Engines(writer=_sqlite_engine(url, "BEGIN IMMEDIATE"),
                       reader=_sqlite_engine(url, "BEGIN"))
    engine = create_engine(url, pool_size=8, max_overflow=8)
    return Engines(writer=engine, reader=engine)
