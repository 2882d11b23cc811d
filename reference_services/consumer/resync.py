"""Partial and full resync of the replica from the publisher.

- partial(ids): fetch the products (POST /products/batch, FETCH_BATCH ids per request)
  and overwrite the replica row when the publisher's version is the same or newer. "Same"
  matters: a consumer bug that wrote wrong values did so at the right version, and only an
  overwrite repairs it.
- full(): GET /export gives every live product consistent with an outbox high-water mark
  H; the replica is replaced by it, then the consumer catches up with GET /events?after=H
  through the normal apply path, so nothing after H is missed and nothing is applied twice
  (the inbox and version checks make the overlap with the queue harmless). A product the
  export lacks was deleted at the source: its row becomes a tombstone at the delete's
  version (the batch fetch lists it as deleted with that version), so an older event still
  queued or waiting on the apply lock is found stale instead of bringing the product back.
  The catch-up is the only path for events after H that the queue lost: a page it cannot
  read fails the resync (the report says how far it got), it never ends it early.
  The export is read as a stream and written EXPORT_BATCH rows at a time (executemany)
  inside one transaction while the publisher is still sending the rest: no round trip per
  row, and the replica changes all at once or not at all.

Both hold the apply lock, so the batch worker never interleaves with a resync, and both
are safe while events keep flowing. Results are data: what was fetched, changed, removed.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from sqlalchemy import Connection, bindparam, select, update

from harness.contract import envelope as env
from reference_services.consumer.applier import Applier, IncomingMessage, RemoteProduct
from reference_services.consumer.models import replica_products
from reference_services.consumer.restricted import with_restricted

FETCH_BATCH = 5000
"""Ids per POST /products/batch: within the publisher's limit (10,000), and an answer of
about a megabyte, so a big partial resync is a few requests."""
EXPORT_BATCH = 5000
"""Exported rows per executemany of a full resync."""
_EXPORT_READ = 1 << 20  # bytes per read of the export stream
_COMPARED = (*env.PRODUCT_FIELDS, "version", "deleted")
_EXPORTED = ("id", *env.PRODUCT_FIELDS, "version")  # the fields of an exported row


def fetch_products(client: httpx.Client, ids: Sequence[int],
                   ) -> dict[int, RemoteProduct | None]:
    """What the publisher holds for each id, as GET /products/{id} would say it (None: it
    never had the product), in one POST /products/batch per FETCH_BATCH ids. Raises
    httpx.HTTPError when the publisher cannot be asked or answers anything but 200."""
    remote: dict[int, RemoteProduct | None] = {}
    unique = sorted(set(ids))
    for start in range(0, len(unique), FETCH_BATCH):
        chunk = unique[start:start + FETCH_BATCH]
        response = client.post("/products/batch", json={"ids": chunk}, timeout=30.0)
        response.raise_for_status()
        body = response.json()
        found: dict[int, RemoteProduct] = {
            int(p["id"]): RemoteProduct(version=p["version"], deleted=False, fields=p)
            for p in body["products"]}
        found.update({int(d["id"]): RemoteProduct(version=d["version"], deleted=True)
                      for d in body["deleted"]})
        remote.update({pid: found.get(pid) for pid in chunk})
    return remote


def ndjson_batches(chunks: Iterable[bytes], size: int) -> Iterator[list[Any]]:
    """The JSON values of newline-delimited `chunks` (split anywhere), `size` at a time."""
    batch: list[Any] = []
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        # One parse per chunk, as a JSON array: a parse per line costs 2.5x as much.
        batch.extend(json.loads(b"[" + b",".join(line for line in lines if line.strip())
                                + b"]"))
        while len(batch) >= size:
            yield batch[:size]
            batch = batch[size:]
    if rest.strip():
        batch.append(json.loads(rest))
    if batch:
        yield batch


class ResyncError(RuntimeError):
    pass


@dataclass
class ResyncReport:
    kind: str
    requested: int = 0
    fetched: int = 0
    changed: int = 0
    removed: int = 0
    caught_up_events: int = 0
    high_water_mark: int | None = None
    # The last sequence the catch-up applied (H when there was nothing after it).
    caught_up_to: int | None = None
    duration_s: float = 0.0
    changed_ids: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["changed_ids"] = self.changed_ids[:1000]
        return data


class Resyncer:
    def __init__(self, applier: Applier, client: httpx.Client) -> None:
        self.applier = applier
        self.client = client
        self.apply_lock = applier.lock
        self.history: list[dict[str, Any]] = []

    def _get(self, path: str, **params: Any) -> httpx.Response:
        try:
            return self.client.get(path, params=params, timeout=30.0)
        except httpx.HTTPError as exc:
            raise ResyncError(f"publisher unreachable for {path}: {exc}") from exc

    def fetch_many(self, ids: Sequence[int]) -> dict[int, RemoteProduct | None]:
        try:
            return fetch_products(self.client, ids)
        except httpx.HTTPError as exc:
            raise ResyncError(f"publisher could not answer /products/batch: {exc}") from exc

    def fetch(self, product_id: int) -> RemoteProduct | None:
        response = self._get(f"/products/{product_id}")
        if response.status_code == 404:
            return None
        body = response.json()
        if response.status_code == 410:
            return RemoteProduct(version=body["version"], deleted=True)
        if response.status_code != 200:
            raise ResyncError(f"publisher answered {response.status_code} for {product_id}")
        return RemoteProduct(version=body["version"], deleted=False, fields=body)

    def partial(self, ids: Sequence[int], kind: str = "partial") -> ResyncReport:
        began = time.monotonic()
        report = ResyncReport(kind, requested=len(ids))
        remote = self.fetch_many(ids)
        report.fetched = len(remote)
        with self.apply_lock, self.applier.writer.begin() as conn:
            current = _current_rows(conn, list(remote))
            rows: list[dict[str, Any]] = []
            for pid, product in remote.items():
                row = current.get(pid)
                if product is None:
                    # The publisher never had it: whatever the replica holds is wrong.
                    if row is not None and not row.deleted:
                        conn.execute(update(replica_products)
                                     .where(replica_products.c.id == pid).values(deleted=True))
                        report.removed += 1
                        report.changed_ids.append(pid)
                    continue
                if row is not None and product.version < row.version:
                    continue  # an event newer than our read already landed: keep it
                new = self._row_from(product, row)
                if row is None or any(getattr(row, k) != v for k, v in new.items()):
                    rows.append({"id": pid, **new})
                    report.changed += 1
                    report.changed_ids.append(pid)
            for start in range(0, len(rows), EXPORT_BATCH):
                self.applier.write_rows(conn, rows[start:start + EXPORT_BATCH])
        report.duration_s = round(time.monotonic() - began, 4)
        self.history.append(report.to_dict())
        return report

    def _row_from(self, product: RemoteProduct, row: Any) -> dict[str, Any]:
        if product.deleted:
            base = ({k: getattr(row, k) for k in env.PRODUCT_FIELDS} if row is not None
                    else {k: ("" if t is str else 0) for k, t in env.PRODUCT_FIELDS.items()})
            return {**base, "version": product.version, "deleted": True}
        return {**{k: product.fields[k] for k in env.PRODUCT_FIELDS},
                "version": product.version, "deleted": False}

    def full(self) -> ResyncReport:
        began = time.monotonic()
        report = ResyncReport("full")
        # Export only once the worker is held: everything it processed was published, hence
        # committed, before the export, so the export's high-water mark covers it.
        with self.apply_lock:
            try:
                with self.client.stream("GET", "/export", timeout=300.0) as response:
                    if response.status_code != 200:
                        raise ResyncError(f"publisher answered {response.status_code} for "
                                          "/export")
                    self._replace(report, ndjson_batches(
                        response.iter_bytes(_EXPORT_READ), EXPORT_BATCH))
            except (httpx.HTTPError, ValueError) as exc:
                # Nothing was written: the transaction rolled back with the stream.
                raise ResyncError(f"reading /export failed: {exc}") from exc
        report.caught_up_to = report.high_water_mark
        if self.applier.variant != "skip_catch_up":
            self._catch_up(report)
        # else BUG (variant skip_catch_up): everything after the export is left to the
        # queue, which holds nothing that it lost before the resync.
        report.duration_s = round(time.monotonic() - began, 4)
        self.history.append(report.to_dict())
        return report

    def _replace(self, report: ResyncReport, batches: Iterator[list[Any]]) -> None:
        """Make the replica the export `batches` hold (a header, then the live rows) in one
        transaction: changed rows written a batch at a time as they arrive, rows the export
        lacks turned into tombstones."""
        first = next(batches, [])
        if not first:
            raise ResyncError("/export answered nothing, not even its header")
        header = first[0]
        report.high_water_mark = int(header["high_water_mark"])
        with self.applier.writer.begin() as conn:
            current = _current_rows(conn)
            live: set[int] = set()
            for items in itertools.chain([first[1:]], batches):
                rows = []
                for item in items:
                    new = {k: item[k] for k in _EXPORTED}
                    new["deleted"] = False
                    pid = new["id"]
                    live.add(pid)
                    row = current.get(pid)
                    # Rows come back as (id, *_COMPARED): one tuple comparison per row.
                    if row is None or row[1:] != tuple(new[k] for k in _COMPARED):
                        rows.append(new)
                        report.changed_ids.append(pid)
                self.applier.write_rows(conn, rows)
                report.changed += len(rows)
            report.fetched = len(live)
            if report.fetched != int(header["count"]):
                # A stream cut short would otherwise turn every row it missed into a
                # tombstone.
                raise ResyncError(f"/export announced {header['count']} rows and sent "
                                  f"{report.fetched}")
            gone = [pid for pid, row in current.items() if pid not in live and not row.deleted]
            remote = self.fetch_many(gone)
            if gone:
                conn.execute(update(replica_products)
                             .where(replica_products.c.id == bindparam("pid"))
                             .values(deleted=True, version=bindparam("tombstone")),
                             [{"pid": pid,
                               "tombstone": _tombstone_version(current[pid], remote[pid])}
                              for pid in gone])
            report.removed = len(gone)
            report.changed_ids.extend(gone)

    def _catch_up(self, report: ResyncReport) -> None:
        """Apply events published after the export, through the normal apply path, page by
        page until a page comes back empty; progress is kept in `report`."""
        assert report.caught_up_to is not None
        for _ in range(10_000):  # bounded: 10k pages of 1000 events
            try:
                response = self._get("/events", after=report.caught_up_to, limit=1000)
            except ResyncError as exc:
                raise _stopped(report, str(exc)) from exc
            if response.status_code != 200:
                raise _stopped(report, f"publisher answered {response.status_code} for "
                                       f"/events?after={report.caught_up_to}")
            events = response.json()
            if not events:
                return
            messages = [IncomingMessage(env.from_event(with_restricted(e)).encode(), False,
                                        time.time()) for e in events]
            with self.apply_lock:
                self.applier.apply_batch(messages)
            report.caught_up_events += len(events)
            report.caught_up_to = int(events[-1]["sequence"])


def _current_rows(conn: Connection, ids: Sequence[int] | None = None) -> dict[int, Any]:
    """The replica's rows (all, or those among `ids`), with only what a resync compares."""
    query = select(replica_products.c.id, *(replica_products.c[k] for k in _COMPARED))
    if ids is None:
        return {row.id: row for row in conn.execute(query)}
    found: dict[int, Any] = {}
    for start in range(0, len(ids), EXPORT_BATCH):
        chunk = ids[start:start + EXPORT_BATCH]
        found.update((row.id, row) for row in conn.execute(
            query.where(replica_products.c.id.in_(chunk))))
    return found


def _tombstone_version(row: Any, product: RemoteProduct | None) -> int:
    """The version a product the export lacks was deleted at, or the row's own when the
    publisher never had it."""
    return int(max(row.version, product.version) if product is not None else row.version)


def _stopped(report: ResyncReport, why: str) -> ResyncError:
    return ResyncError(f"catch-up stopped: {why}; the replica holds the export at "
                       f"{report.high_water_mark} and events up to {report.caught_up_to}: "
                       "run the full resync again")
