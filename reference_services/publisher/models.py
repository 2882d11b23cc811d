"""Product service tables: the entity, and the transactional outbox."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("price", Integer, nullable=False),
    Column("stock", Integer, nullable=False),
    Column("restricted_note", String(500), nullable=False, default=""),
    Column("version", Integer, nullable=False),
    # Deleted products stay as tombstones so a resync can learn the delete's version.
    Column("deleted", Boolean, nullable=False, default=False),
    # Halves of the row's digest (harness/contract/dataset.py): dataset and range
    # hashes are SUMs over these, so verifying a million rows never reads them.
    Column("h1", Integer, nullable=False, default=0),
    Column("h2", Integer, nullable=False, default=0),
    # The same over the row with its restricted fields redacted (harness/contract/grants.py):
    # the hashes served to a caller without the grant, as cheap as the full ones.
    # A server default too: the integrity bench inserts rows with raw SQL naming h1/h2 only.
    Column("p1", Integer, nullable=False, default=0, server_default="0"),
    Column("p2", Integer, nullable=False, default=0, server_default="0"),
    sqlite_autoincrement=True,
)

outbox = Table(
    "outbox",
    metadata,
    # The publisher-wide sequence. SQLite serialises writers, so there seq order is commit
    # order; on PostgreSQL it is not (see store.py: how the relay and high-water marks
    # cope).
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("aggregate_id", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("occurred_at", Float, nullable=False),
    Column("schema_version", Integer, nullable=False),
    # What the broker carries: no restricted value (their names in payload["withheld"]).
    Column("payload", Text, nullable=False),
    # The restricted values the event withheld, as JSON: served through the API to the
    # consumers granted them, with the event's exact version (POST /events/restricted).
    Column("restricted", Text, nullable=True),
    Column("sent_at", Float, nullable=True, index=True),
    sqlite_autoincrement=True,
)
