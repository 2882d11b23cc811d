"""Product writes: each one changes the entity and appends its event to the outbox in the
same database transaction, so an event exists if and only if its change committed.

Sequence order is not commit order on PostgreSQL: a writer takes its sequence number when
it inserts its outbox row and commits a moment later, so a row with a lower number can
become visible after one with a higher number. What that means for readers of the outbox
(docs/architecture.md, "Outbox order on PostgreSQL"):

- the relay reads rows *not yet marked sent*, never "after the last number I sent", so a
  row committed late is simply found by a later poll;
- a high-water mark H (snapshot, export, and the pages of GET /events) must promise that
  nothing at or below H can still appear. On PostgreSQL every writer holds a shared
  advisory lock from just before it takes its number until it commits, and a reader of H
  takes the same lock exclusively while its snapshot is taken: at that instant no number
  is in flight, so every number up to the highest it sees has committed or rolled back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, literal, select, text, update

from harness.contract import envelope as env
from harness.contract.dataset import row_hash_parts
from harness.contract.grants import REDACTED, RESTRICTED_FIELDS, WITHHELD, redact
from reference_services.common.db import Engines, is_postgres
from reference_services.common.rowhash_sql import id_bounds, ranges_summary, table_summary
from reference_services.publisher.commit_delay import CommitDelay
from reference_services.publisher.models import metadata, outbox, products

EDITABLE_FIELDS = ("name", "category", "price", "restricted_note")
# What a replica can hold, so every accepted write can replicate: the replica's text
# columns are String(200), String(64) and String(500) (lengths in characters), its numbers
# Integer columns, 32-bit signed on most databases (SQLite's are wider; the contract is
# the portable width).
MAX_LENGTH = {"name": 200, "category": 64, "restricted_note": 500}
INT_MAX = 2**31 - 1
# Lowest value per number field: a negative price means nothing; stock may go below zero
# (backorders: the workload's deltas do it), down to what the column holds.
INT_MIN = {"price": 0, "stock": -INT_MAX}
# The advisory lock key (any bigint) guarding "number taken, not yet committed".
SEQUENCE_LOCK = 0x52434830  # "RCH0"
# Ids per IN (...) list of a read by ids: far below SQLite's limit of bound parameters
# (32,766), large enough that a batch of thousands of ids costs a handful of statements.
ID_CHUNK = 2000
# Ids one POST /products/batch may ask for: its answer stays a few MB at most.
MAX_BATCH_IDS = 10_000


class NotFound(LookupError):
    pass


class Gone(LookupError):
    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"deleted at version {version}")


class InvalidInput(ValueError):
    pass


@dataclass(frozen=True)
class WriteResult:
    product: dict[str, Any]
    event_id: str
    sequence: int


def product_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "category": row.category,
        "price": row.price,
        "stock": row.stock,
        "restricted_note": row.restricted_note,
        "version": row.version,
    }


def _hashes(product: dict[str, Any]) -> dict[str, int]:
    h1, h2 = row_hash_parts(product["id"], product)
    p1, p2 = row_hash_parts(product["id"], redact(product, ()))
    return {"h1": h1, "h2": h2, "p1": p1, "p2": p2}


def _view(row: dict[str, Any], granted: frozenset[str]) -> dict[str, Any]:
    return row if granted >= set(RESTRICTED_FIELDS) else redact(row, granted)


def _hash_parts(granted: frozenset[str]) -> tuple[str, str]:
    """The digest columns of the view a caller granted `granted` has (grants are all
    restricted fields or none: harness/contract/grants.py)."""
    return ("h1", "h2") if granted >= set(RESTRICTED_FIELDS) else ("p1", "p2")


def _upsert_payload(product: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A ProductUpserted's payload as the broker carries it (no restricted value: each
    is REDACTED, and the fields withheld are named), and the withheld values as JSON."""
    payload = redact({k: product[k] for k in env.PRODUCT_FIELDS}, ())
    withheld = {k: product[k] for k in RESTRICTED_FIELDS if product[k] != REDACTED}
    if not withheld:
        return payload, None
    return {**payload, WITHHELD: sorted(withheld)}, json.dumps(withheld)


ALL = frozenset(RESTRICTED_FIELDS)


def _validate(fields: dict[str, Any], required: bool) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    kinds = {**{k: env.PRODUCT_FIELDS[k] for k in EDITABLE_FIELDS}, "stock": int}
    for name, kind in kinds.items():
        if name not in fields:
            if required and name != "restricted_note":
                raise InvalidInput(f"missing field: {name}")
            continue
        value = fields[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise InvalidInput(f"field {name} must be {kind.__name__}")
        if isinstance(value, str) and len(value) > MAX_LENGTH[name]:
            raise InvalidInput(f"field {name} is {len(value)} characters long; at most "
                               f"{MAX_LENGTH[name]} fit the replica")
        if isinstance(value, int) and not INT_MIN[name] <= value <= INT_MAX:
            raise InvalidInput(f"field {name} must be from {INT_MIN[name]} to {INT_MAX}, "
                               f"got {value}")
        clean[name] = value
    return clean


class ProductStore:
    def __init__(self, engines: Engines, commit_delay: CommitDelay | None = None) -> None:
        self.engines = engines
        self.postgres = is_postgres(engines.writer)
        # Fault hook (scenario outbox_commit_order): holds some transactions open between
        # their outbox insert and their commit.
        self.commit_delay = commit_delay or CommitDelay()
        metadata.create_all(engines.writer)

    def _append_event(self, conn: Connection, kind: str, product: dict[str, Any],
                      payload: dict[str, Any], restricted: str | None = None
                      ) -> tuple[str, int]:
        event_id = env.new_event_id()
        if self.postgres:
            # Held until commit: no reader of a high-water mark takes its snapshot while
            # this transaction holds a sequence number (module docstring).
            conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"),
                         {"key": SEQUENCE_LOCK})
        result = conn.execute(insert(outbox).values(
            event_id=event_id,
            type=kind,
            aggregate_id=str(product["id"]),
            version=product["version"],
            occurred_at=time.time(),
            schema_version=env.SCHEMA_VERSION,
            payload=json.dumps(payload, separators=(",", ":")),
            restricted=restricted,
        ))
        seq = result.inserted_primary_key
        assert seq is not None
        self.commit_delay.hold(lambda: self._committed_after(int(seq[0])))
        return event_id, int(seq[0])

    def _committed_after(self, seq: int) -> int:
        # Another session: it sees what others committed, not this open transaction.
        with self.engines.reader.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(outbox)
                                    .where(outbox.c.seq > seq)).scalar_one())

    def _load_live(self, conn: Connection, product_id: int, for_update: bool = False) -> Any:
        query = select(products).where(products.c.id == product_id)
        # A writer locks the row it is about to change, or two concurrent writers on
        # PostgreSQL would both build version v+1 from v (SQLite has one writer at a time
        # and renders no FOR UPDATE).
        row = conn.execute(query.with_for_update() if for_update else query).first()
        if row is None:
            raise NotFound(f"product {product_id} not found")
        if row.deleted:
            raise Gone(row.version)
        return row

    def create(self, fields: dict[str, Any]) -> WriteResult:
        clean = _validate(fields, required=True)
        clean.setdefault("restricted_note", "")
        with self.engines.writer.begin() as conn:
            result = conn.execute(insert(products).values(**clean, version=1, deleted=False))
            pk = result.inserted_primary_key
            assert pk is not None
            product = {"id": int(pk[0]), **clean, "version": 1}
            conn.execute(update(products).where(products.c.id == product["id"])
                         .values(**_hashes(product)))
            event_id, seq = self._append_event(conn, env.PRODUCT_UPSERTED, product,
                                               *_upsert_payload(product))
        return WriteResult(product, event_id, seq)

    def update(self, product_id: int, fields: dict[str, Any]) -> WriteResult:
        clean = _validate(fields, required=False)
        clean.pop("stock", None)  # stock changes only through adjust_stock deltas
        if not clean:
            raise InvalidInput(f"nothing to update: give one of {', '.join(EDITABLE_FIELDS)}")
        with self.engines.writer.begin() as conn:
            row = self._load_live(conn, product_id, for_update=True)
            product = {**product_dict(row), **clean, "version": row.version + 1}
            conn.execute(update(products).where(products.c.id == product_id)
                         .values(**clean, version=product["version"], **_hashes(product)))
            event_id, seq = self._append_event(conn, env.PRODUCT_UPSERTED, product,
                                               *_upsert_payload(product))
        return WriteResult(product, event_id, seq)

    def delete(self, product_id: int) -> WriteResult:
        with self.engines.writer.begin() as conn:
            row = self._load_live(conn, product_id, for_update=True)
            product = {**product_dict(row), "version": row.version + 1}
            conn.execute(update(products).where(products.c.id == product_id)
                         .values(deleted=True, version=product["version"]))
            event_id, seq = self._append_event(conn, env.PRODUCT_DELETED, product, {})
        return WriteResult(product, event_id, seq)

    def adjust_stock(self, product_id: int, delta: Any) -> WriteResult:
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            raise InvalidInput("field delta must be a non-zero int")
        with self.engines.writer.begin() as conn:
            row = self._load_live(conn, product_id, for_update=True)
            # Raised inside the transaction: nothing is written.
            if not INT_MIN["stock"] <= row.stock + delta <= INT_MAX:
                raise InvalidInput(f"delta {delta} would take stock {row.stock} out of "
                                   f"the range {INT_MIN['stock']} to {INT_MAX}")
            product = {**product_dict(row), "stock": row.stock + delta,
                       "version": row.version + 1}
            conn.execute(update(products).where(products.c.id == product_id)
                         .values(stock=product["stock"], version=product["version"],
                                 **_hashes(product)))
            payload = {"delta": delta, "stock": product["stock"]}
            event_id, seq = self._append_event(conn, env.STOCK_ADJUSTED, product, payload)
        return WriteResult(product, event_id, seq)

    def get(self, product_id: int, granted: frozenset[str] = ALL) -> dict[str, Any]:
        with self.engines.reader.connect() as conn:
            return _view(product_dict(self._load_live(conn, product_id)), granted)

    @staticmethod
    def _high_water_mark(conn: Connection) -> int:
        return int(conn.execute(select(func.coalesce(func.max(outbox.c.seq), 0))).scalar_one())

    @contextmanager
    def _stable_read(self) -> Iterator[tuple[Connection, int]]:
        """A read transaction and the high-water mark H it is consistent with: every outbox
        row numbered H or lower that will ever commit is visible in it (module docstring)."""
        with self.engines.reader.connect() as conn:
            if not self.postgres:
                yield conn, self._high_water_mark(conn)  # one writer at a time: no gaps
                conn.commit()
                return
            try:
                # A session lock, taken in a transaction of its own: the snapshot must be
                # taken after it is granted, by the next transaction's first statement.
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SEQUENCE_LOCK})
                conn.commit()
                hwm = self._high_water_mark(conn)
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SEQUENCE_LOCK})
            except BaseException:
                # Never return a connection to the pool that may still hold the lock.
                conn.invalidate()
                raise
            yield conn, hwm
            conn.commit()

    def snapshot(self, granted: frozenset[str] = ALL) -> dict[str, Any]:
        """Summary of the live dataset as a caller granted `granted` sees it, consistent
        with the returned outbox high-water mark."""
        with self._stable_read() as (conn, hwm):
            summary = table_summary(conn, products, _hash_parts(granted))
            bounds = id_bounds(conn, products)
        return {**summary, "high_water_mark": hwm, "id_range": list(bounds)}

    def range_hashes(self, bounds: list[tuple[int, int]], granted: frozenset[str] = ALL
                     ) -> list[dict[str, Any]]:
        """count and hash of live rows per [lo, hi) id range, in one statement, over the
        rows as a caller granted `granted` sees them."""
        with self.engines.reader.begin() as conn:
            return ranges_summary(conn, products, bounds, _hash_parts(granted))

    def products_by_ids(self, ids: list[int], granted: frozenset[str] = ALL
                        ) -> tuple[list[dict[str, Any]], dict[int, int]]:
        """The live products among `ids`, and {id: version} of those deleted; an id in
        neither was never created. One read transaction, so the answer is one state of
        the table even while writes go on."""
        live: list[dict[str, Any]] = []
        deleted: dict[int, int] = {}
        with self.engines.reader.begin() as conn:
            for start in range(0, len(ids), ID_CHUNK):
                for row in conn.execute(select(products).where(
                        products.c.id.in_(ids[start:start + ID_CHUNK]))
                        .order_by(products.c.id)):
                    if row.deleted:
                        deleted[row.id] = row.version
                    else:
                        live.append(_view(product_dict(row), granted))
        return live, deleted

    def rows_in_range(self, lo: int, hi: int, granted: frozenset[str] = ALL
                      ) -> list[dict[str, Any]]:
        with self.engines.reader.connect() as conn:
            rows = conn.execute(select(products).where(
                products.c.deleted.is_(False), products.c.id >= lo, products.c.id < hi)
                .order_by(products.c.id))
            return [_view(product_dict(row), granted) for row in rows]

    def export(self, chunk_rows: int, granted: frozenset[str] = ALL) -> Iterator[str]:
        """Every live product as NDJSON, read in the same transaction as the high-water
        mark: first the line {"high_water_mark", "count"}, then `chunk_rows` product lines
        per piece. A generator, so the caller sends each piece while the next is read (the
        read transaction stays open until it is exhausted or closed), and the table is
        never held in memory whole. A restricted field not `granted` is read as REDACTED
        by the statement itself, so filtering costs nothing per row."""
        live = products.c.deleted.is_(False)
        columns = [products.c[k] if k not in RESTRICTED_FIELDS or k in granted
                   else literal(REDACTED).label(k) for k in _EXPORTED]
        with self._stable_read() as (conn, hwm):
            count = conn.execute(select(func.count()).select_from(products)
                                 .where(live)).scalar_one()
            yield json.dumps({"high_water_mark": hwm, "count": int(count)}) + "\n"
            result = conn.execution_options(yield_per=chunk_rows).execute(
                select(*columns).where(live)
                .order_by(products.c.id))
            for part in result.partitions():
                yield "".join(_export_line(*row) for row in part)

    def events_after(self, seq: int, limit: int, granted: frozenset[str] = ALL
                     ) -> list[dict[str, Any]]:
        """Up to `limit` events after `seq`, none above a stable high-water mark: a reader
        that pages on with the last sequence it got skips nothing committed late. Each as
        the broker carries it, plus `restricted`: the withheld values it is `granted`."""
        with self._stable_read() as (conn, hwm):
            rows = conn.execute(select(outbox).where(outbox.c.seq > seq, outbox.c.seq <= hwm)
                                .order_by(outbox.c.seq).limit(limit)).all()
        return [outbox_event(row) | {"sent_at": row.sent_at}
                | ({"restricted": values} if (values := _granted_values(row, granted))
                   else {}) for row in rows]

    def restricted_values(self, event_ids: list[str], granted: frozenset[str]
                          ) -> dict[str, dict[str, Any]]:
        """{event_id: {field: value}}: the withheld values of these events that a caller
        granted `granted` may read, at each event's own version."""
        found: dict[str, dict[str, Any]] = {}
        with self.engines.reader.connect() as conn:
            for start in range(0, len(event_ids), ID_CHUNK):
                for row in conn.execute(select(outbox.c.event_id, outbox.c.restricted).where(
                        outbox.c.event_id.in_(event_ids[start:start + ID_CHUNK]),
                        outbox.c.restricted.is_not(None))):
                    values = _granted_values(row, granted)
                    if values:
                        found[row.event_id] = values
        return found

    def envelope(self, seq: int, fat: bool = False) -> env.Envelope:
        with self.engines.reader.connect() as conn:
            return envelope_from_row(conn.execute(select(outbox).where(outbox.c.seq == seq))
                                     .one(), fat)

    def last_sent_seq(self) -> int:
        """The highest sequence marked sent (0 when none is)."""
        with self.engines.reader.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(outbox.c.seq), 0))
                                    .where(outbox.c.sent_at.is_not(None))).scalar_one())

    def mark_sent(self, seqs: list[int]) -> None:
        now = time.time()
        with self.engines.writer.begin() as conn:
            conn.execute(update(outbox).where(outbox.c.seq == bindparam("s"))
                         .values(sent_at=now), [{"s": s} for s in seqs])

    def outbox_counts(self) -> dict[str, int]:
        with self.engines.reader.connect() as conn:
            total = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
            pending = conn.execute(select(func.count()).select_from(outbox)
                                   .where(outbox.c.sent_at.is_(None))).scalar_one()
        return {"events": int(total), "pending": int(pending)}


_EXPORTED = ("id", "name", "category", "price", "stock", "restricted_note", "version")


def _export_line(pid: int, name: str, category: str, price: int, stock: int,
                 restricted_note: str, version: int) -> str:
    """product_dict(row) as one JSON line, formatted directly: a full resync's export
    writes one per live product, and a dict plus a generic encode per row cost twice as
    much."""
    return (f'{{"id":{pid},"name":{json.dumps(name)},"category":{json.dumps(category)},'
            f'"price":{price},"stock":{stock},'
            f'"restricted_note":{json.dumps(restricted_note)},"version":{version}}}\n')


def outbox_event(row: Any) -> dict[str, Any]:
    return {
        "event_id": row.event_id,
        "type": row.type,
        "aggregate_id": row.aggregate_id,
        "version": row.version,
        "sequence": row.seq,
        "occurred_at": row.occurred_at,
        "schema_version": row.schema_version,
        "payload": json.loads(row.payload),
    }


def _granted_values(row: Any, granted: frozenset[str]) -> dict[str, Any]:
    if row.restricted is None:
        return {}
    return {k: v for k, v in json.loads(row.restricted).items() if k in granted}


def envelope_from_row(row: Any, fat: bool = False) -> env.Envelope:
    event = outbox_event(row)
    if fat and row.restricted is not None:
        # BUG (variant fat_events): the withheld values go out inside the event, to every
        # subscriber, granted or not.
        payload = {k: v for k, v in event["payload"].items() if k != WITHHELD}
        event["payload"] = {**payload, **json.loads(row.restricted)}
    return env.Envelope(**event)
