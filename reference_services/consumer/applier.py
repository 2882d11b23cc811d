"""Applying a batch of delivered messages to the replica in one local transaction.

For each message, in delivery order: decode it (or dead-letter it with the reason), drop it
if its event_id was processed before, apply it only if its version is newer than the
replica's, and record what happened. A stock delta applies only on top of the version just
before it; if that version never arrived, the product is fetched from the publisher
(partial resync) instead of guessing. On Kafka the batch also records, in the same
transaction, the position in each partition it brings the consumer to.

An upsert carries no restricted value (harness/contract/grants.py): it names those it
withheld. A consumer granted them fetches the batch's withheld values from the publisher,
each at its event's own version, in one call before the transaction; one the publisher
does not know (an event it never wrote) is resynced from the product instead. A consumer
without the grant stores the event as it came: REDACTED in their place.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from harness.contract import envelope as env
from harness.contract.dataset import row_hash_parts
from harness.contract.grants import WITHHELD
from harness.contract.outcomes import APPLIED, DEAD_LETTERED, DEDUPLICATED, RESYNCED, STALE
from reference_services.common.crashpoints import CRASH_POINTS
from reference_services.consumer.models import (
    consumer_offsets,
    dead_letters,
    deliveries,
    inbox,
    replica_products,
)


@dataclass(frozen=True)
class IncomingMessage:
    body: bytes
    redelivered: bool
    received_at: float


@dataclass(frozen=True)
class PartitionPosition:
    """Where a batch leaves the consumer in one partition of a Kafka topic."""

    topic: str
    partition: int
    next_offset: int
    last_digest: str  # SHA-256 (hex) of the record at next_offset - 1


@dataclass(frozen=True)
class RemoteProduct:
    """What the publisher's GET /products/{id} says: a live row, or a tombstone."""

    version: int
    deleted: bool
    fields: dict[str, Any] = field(default_factory=dict)


class ResyncUnavailable(RuntimeError):
    """The publisher could not be asked; the batch is retried later."""


class DatabaseUnavailable(RuntimeError):
    """The batch's transaction failed on the way to the database (connection refused,
    reset or cut). Its commit may still have reached the server, so the batch must be
    neither acknowledged nor skipped: it is retried, and the inbox makes what did commit a
    no-op."""


# A batch whose transaction failed is tried again after a pause doubling from the first
# value to the second with each failure in a row: short enough that a healed database link
# costs little lag, long enough that a dead one is not hammered.
DB_RETRY_S = (0.05, 0.5)


def db_retry_pause_s(failures: int) -> float:
    """The pause after the `failures`-th failed transaction in a row (1 for the first)."""
    return min(DB_RETRY_S[1], DB_RETRY_S[0] * 2.0 ** max(0, failures - 1))


def connection_failed(exc: DBAPIError) -> bool:
    """Whether a database error is the connection's failure (worth retrying), not the
    statement's (a bug, which retrying would repeat)."""
    return exc.connection_invalidated or isinstance(exc, (OperationalError, InterfaceError))


FetchProduct = Callable[[int], RemoteProduct | None]


class RestrictedValues(Protocol):
    """The publisher's answers about restricted fields; both raise ResyncUnavailable
    when it cannot be asked."""

    def granted(self) -> frozenset[str]:
        """The restricted fields this consumer may read."""

    def values(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """{event_id: {field: value}}: what those events withheld, that it may read."""


@dataclass(frozen=True)
class _Withheld:
    """What a batch's upserts withheld that this consumer may read, fetched."""

    granted: frozenset[str] = frozenset()
    values: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def wanted(self, event: env.Envelope) -> frozenset[str]:
        withheld = event.payload.get(WITHHELD)
        if event.type != env.PRODUCT_UPSERTED or not isinstance(withheld, list):
            return frozenset()
        return self.granted & frozenset(withheld)

# Variant log_lies_stale drops the events whose sequence is a multiple of this.
LIE_STALE_EVERY = 25


@dataclass
class BatchResult:
    outcomes: list[str]
    # index in the batch -> why it was dead-lettered
    dead_letter_reasons: dict[int, str] = field(default_factory=dict)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o == outcome)


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: Sequence[str],
            updates: Sequence[str]) -> None:
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={c: stmt.excluded[c] for c in updates})
    conn.execute(stmt, rows)


class Applier:
    def __init__(self, writer: Engine, fetch_product: FetchProduct, variant: str = "none",
                 restricted: RestrictedValues | None = None):
        self.writer = writer
        self.fetch_product = fetch_product
        self.variant = variant
        # None: the consumer reads no restricted field (it stores what events carry).
        self.restricted = restricted
        # Held by every writer of the replica (batches and resyncs), so a resync never
        # interleaves with a batch. Re-entrant: a full resync applies its catch-up batches.
        self.lock = threading.RLock()

    def apply_batch(self, messages: Sequence[IncomingMessage],
                    positions: Sequence[PartitionPosition] = ()) -> BatchResult:
        """Apply `messages` and store `positions` in one transaction: both or neither.
        Raises DatabaseUnavailable when the transaction could not be carried out."""
        with self.lock:
            try:
                return self._apply_batch(messages, positions)
            except DBAPIError as exc:
                if not connection_failed(exc):
                    raise
                raise DatabaseUnavailable(f"{type(exc.orig).__name__}: "
                                          f"{str(exc.orig).strip()[:300]}") from exc

    def _apply_batch(self, messages: Sequence[IncomingMessage],
                     positions: Sequence[PartitionPosition]) -> BatchResult:
        decoded: list[env.Envelope | env.EnvelopeError] = []
        for message in messages:
            try:
                decoded.append(env.decode(message.body))
            except env.EnvelopeError as exc:
                decoded.append(exc)
        envelopes = [d for d in decoded if isinstance(d, env.Envelope)]
        withheld = self._fetch_withheld(envelopes)
        with self.writer.begin() as conn:
            seen = self._already_processed(conn, [e.event_id for e in envelopes])
            rows = self._load_rows(conn, {e.product_id for e in envelopes})
            dirty: set[int] = set()
            inbox_rows: list[dict[str, Any]] = []
            delivery_rows: list[dict[str, Any]] = []
            outcomes: list[str] = []
            reasons: dict[int, str] = {}
            now = time.time()
            for message, item in zip(messages, decoded, strict=True):
                if isinstance(item, env.EnvelopeError):
                    reasons[len(outcomes)] = item.reason
                    self._dead_letter(conn, message.body, item.reason, now)
                    outcomes.append(DEAD_LETTERED)
                    delivery_rows.append(_delivery(None, DEAD_LETTERED, message, now))
                    continue
                if item.event_id in seen and self.variant != "no_dedupe":
                    outcome = DEDUPLICATED
                    if self.variant == "log_lies_dedupe":
                        self._apply_delta_again(item, rows, dirty)
                else:
                    if self.variant == "log_lies_stale" and item.sequence % LIE_STALE_EVERY == 0:
                        # BUG (variant log_lies_stale): the event is dropped unapplied, and
                        # the log says the replica already held a newer version.
                        outcome = STALE
                    else:
                        outcome = self._apply(item, rows, dirty, withheld)
                    if item.event_id in seen:
                        # BUG (variant no_dedupe) reached here: processed a second time.
                        delivery_rows.append(_delivery(item, outcome, message, now))
                        outcomes.append(outcome)
                        continue
                    seen.add(item.event_id)
                    inbox_rows.append({"event_id": item.event_id, "type": item.type,
                                       "aggregate_id": item.aggregate_id,
                                       "version": item.version, "sequence": item.sequence,
                                       "raw": message.body.decode()})
                outcomes.append(outcome)
                delivery_rows.append(_delivery(item, outcome, message, now))
            self.write_rows(conn, [{"id": i, **rows[i]} for i in sorted(dirty)])
            if inbox_rows:
                conn.execute(inbox.insert(), inbox_rows)
            if delivery_rows:
                conn.execute(deliveries.insert(), delivery_rows)
            _upsert(conn, consumer_offsets, [asdict(p) for p in positions],
                    ("topic", "partition"), ("next_offset", "last_digest"))
            CRASH_POINTS.hit("consumer.before_commit")
        return BatchResult(outcomes, reasons)

    def write_rows(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """The one place replica rows are written (apply and resync alike)."""
        if self.variant == "truncate_names":
            # BUG (variant): a consumer-side defect that corrupts what it stores, in every
            # write path, resync included: re-syncing before the fix repairs nothing.
            rows = [{**r, "name": r["name"][:8]} for r in rows]
        if rows:
            # At the driver, in one executemany: SQLAlchemy's per-row parameter handling
            # cost as much as the insert itself for a full resync's rows.
            conn.exec_driver_sql(_replica_upsert(conn.dialect.paramstyle),
                                 [_replica_params(r) for r in rows])

    # -- steps -----------------------------------------------------------------------
    def _fetch_withheld(self, envelopes: Sequence[env.Envelope]) -> _Withheld:
        """Asks the publisher only when an upsert of the batch withheld something: what
        this consumer is granted (once), then the values, in one call."""
        if self.restricted is None or not any(
                e.type == env.PRODUCT_UPSERTED and e.payload.get(WITHHELD) for e in envelopes):
            return _Withheld()
        found = _Withheld(self.restricted.granted())
        ids = [e.event_id for e in envelopes if found.wanted(e)]
        return _Withheld(found.granted, self.restricted.values(ids)) if ids else found

    @staticmethod
    def _already_processed(conn: Connection, event_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            found.update(conn.execute(select(inbox.c.event_id)
                                      .where(inbox.c.event_id.in_(chunk))).scalars())
        return found

    @staticmethod
    def _load_rows(conn: Connection, ids: set[int]) -> dict[int, dict[str, Any]]:
        rows: dict[int, dict[str, Any]] = {}
        id_list = sorted(ids)
        for start in range(0, len(id_list), 500):
            chunk = id_list[start:start + 500]
            for row in conn.execute(select(replica_products)
                                    .where(replica_products.c.id.in_(chunk))):
                rows[row.id] = {c: getattr(row, c) for c in row._fields
                                if c not in ("id", "h1", "h2")}
        return rows

    def _apply(self, event: env.Envelope, rows: dict[int, dict[str, Any]],
               dirty: set[int], withheld: _Withheld) -> str:
        pid = event.product_id
        current = rows.get(pid)
        if self.variant == "no_version_check":
            return self._apply_blindly(event, rows, dirty)
        if current is not None and event.version <= current["version"]:
            return STALE
        if event.type == env.PRODUCT_UPSERTED:
            wanted = withheld.wanted(event)
            values = withheld.values.get(event.event_id, {})
            if not wanted <= values.keys():
                # The publisher never wrote this event: take the product as it is now.
                return self._resync_one(pid, event.version, rows, dirty)
            rows[pid] = {**{k: event.payload[k] for k in env.PRODUCT_FIELDS},
                         **{k: values[k] for k in wanted},
                         "version": event.version, "deleted": False}
        elif event.type == env.PRODUCT_DELETED:
            base = current or {k: ("" if t is str else 0) for k, t in env.PRODUCT_FIELDS.items()}
            rows[pid] = {**base, "version": event.version, "deleted": True}
        elif current is not None and not current["deleted"] \
                and event.version == current["version"] + 1:
            rows[pid] = {**current, "stock": current["stock"] + event.payload["delta"],
                         "version": event.version}
        else:
            return self._resync_one(pid, event.version, rows, dirty)
        dirty.add(pid)
        return APPLIED

    def _apply_blindly(self, event: env.Envelope, rows: dict[int, dict[str, Any]],
                       dirty: set[int]) -> str:
        """BUG (variant no_version_check): whatever arrives last wins, deltas always add."""
        pid = event.product_id
        current = rows.get(pid)
        base = current or {k: ("" if t is str else 0) for k, t in env.PRODUCT_FIELDS.items()}
        if event.type == env.PRODUCT_UPSERTED:
            rows[pid] = {**{k: event.payload[k] for k in env.PRODUCT_FIELDS},
                         "version": event.version, "deleted": False}
        elif event.type == env.PRODUCT_DELETED:
            rows[pid] = {**base, "version": event.version, "deleted": True}
        else:
            rows[pid] = {**base, "stock": base["stock"] + event.payload["delta"],
                         "version": event.version, "deleted": base.get("deleted", False)}
        dirty.add(pid)
        return APPLIED

    @staticmethod
    def _apply_delta_again(event: env.Envelope, rows: dict[int, dict[str, Any]],
                           dirty: set[int]) -> None:
        """BUG (variant log_lies_dedupe): a redelivered stock delta takes effect once more,
        while the log records the delivery as deduplicated."""
        current = rows.get(event.product_id)
        if event.type == env.STOCK_ADJUSTED and current is not None and not current["deleted"]:
            rows[event.product_id] = {**current,
                                      "stock": current["stock"] + event.payload["delta"]}
            dirty.add(event.product_id)

    def _resync_one(self, pid: int, wanted_version: int, rows: dict[int, dict[str, Any]],
                    dirty: set[int]) -> str:
        remote = self.fetch_product(pid)
        if remote is None or remote.version < wanted_version:
            # The publisher must know at least this version; anything else is a transient
            # inconsistency (e.g. it answered from a stale replica), so retry the batch.
            raise ResyncUnavailable(f"publisher has no version >= {wanted_version} of {pid}")
        current = rows.get(pid)
        if current is None or remote.version > current["version"]:
            if remote.deleted:
                base = current or {k: ("" if t is str else 0)
                                   for k, t in env.PRODUCT_FIELDS.items()}
                rows[pid] = {**base, "version": remote.version, "deleted": True}
            else:
                rows[pid] = {**{k: remote.fields[k] for k in env.PRODUCT_FIELDS},
                             "version": remote.version, "deleted": False}
            dirty.add(pid)
        return RESYNCED

    @staticmethod
    def _dead_letter(conn: Connection, raw: bytes, reason: str, now: float) -> None:
        digest = hashlib.sha256(raw).hexdigest()
        existing = conn.execute(select(dead_letters.c.id, dead_letters.c.attempts)
                                .where(dead_letters.c.digest == digest)).first()
        if existing is None:
            conn.execute(dead_letters.insert().values(digest=digest, reason=reason, raw=raw,
                                                      first_seen=now, last_seen=now,
                                                      attempts=1))
        else:
            conn.execute(dead_letters.update().where(dead_letters.c.id == existing.id)
                         .values(last_seen=now, attempts=existing.attempts + 1))


_REPLICA_COLUMNS = tuple(c.name for c in replica_products.columns)


@functools.cache
def _replica_upsert(paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    updates = ", ".join(f"{c} = excluded.{c}" for c in _REPLICA_COLUMNS if c != "id")
    return (f"INSERT INTO {replica_products.name} ({', '.join(_REPLICA_COLUMNS)}) "
            f"VALUES ({', '.join(mark for _ in _REPLICA_COLUMNS)}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}")


def _replica_params(row: dict[str, Any]) -> tuple[Any, ...]:
    """A replica row as _replica_upsert's parameters, its digest halves computed here."""
    h1, h2 = row_hash_parts(row["id"], row)
    full = {**row, "h1": h1, "h2": h2}
    return tuple(full[c] for c in _REPLICA_COLUMNS)


def _delivery(event: env.Envelope | None, outcome: str, message: IncomingMessage,
              now: float) -> dict[str, Any]:
    return {
        "event_id": event.event_id if event else None,
        "type": event.type if event else None,
        "aggregate_id": event.aggregate_id if event else None,
        "version": event.version if event else None,
        "sequence": event.sequence if event else None,
        "outcome": outcome,
        "redelivered": message.redelivered,
        "occurred_at": event.occurred_at if event else None,
        "received_at": message.received_at,
        "committed_at": now,
    }
