"""Order service tables: its own orders, the product replica, and the bookkeeping that makes
replication checkable (inbox for dedupe, a delivery log, dead letters)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from harness.contract import outcomes

metadata = MetaData()

replica_products = Table(
    "replica_products",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("price", Integer, nullable=False),
    Column("stock", Integer, nullable=False),
    Column("restricted_note", String(500), nullable=False),
    Column("version", Integer, nullable=False),
    # A deleted product keeps its row so older events arriving late stay stale.
    Column("deleted", Boolean, nullable=False),
    # Halves of the row's digest, kept in step with the row (see harness/contract/dataset.py).
    Column("h1", Integer, nullable=False),
    Column("h2", Integer, nullable=False),
)

# One row per event ever processed: the raw event, kept for resync and audits, and the key
# that makes redelivery harmless.
inbox = Table(
    "inbox",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("aggregate_id", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("raw", Text, nullable=False),
)

# Append-only: every delivery and what became of it.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=True, index=True),
    Column("type", String(32), nullable=True),
    Column("aggregate_id", String(32), nullable=True),
    Column("version", Integer, nullable=True),
    Column("sequence", Integer, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("redelivered", Boolean, nullable=False),
    Column("occurred_at", Float, nullable=True),
    Column("received_at", Float, nullable=False),
    Column("committed_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Same bytes redelivered count as attempts of one dead letter, not new ones.
    Column("digest", String(64), nullable=False, unique=True),
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    sqlite_autoincrement=True,
)

# Kafka only: where to resume each partition, written in the same transaction as the batch
# it follows, so the replica and its position in the log never disagree after a crash
# (exactly-once effect without broker transactions). last_digest is the SHA-256 of the
# record just before next_offset: reading that record again on assignment tells whether the
# log is still the one the position counts in.
consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("last_digest", String(64), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("product_id", Integer, nullable=False, index=True),
    Column("quantity", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    sqlite_autoincrement=True,
)

# What the consumer records per delivery: the contract's vocabulary, not a copy of it.
OUTCOMES = outcomes.OUTCOMES
