"""Partial and full resync of the replica from the publisher.

- partial(ids): fetch each product (GET /products/{id}) and overwrite the replica row when
  the publisher's version is the same or newer. "Same" matters: a consumer bug that wrote
  wrong values did so at the right version, and only an overwrite repairs it.
- full(): GET /export gives every live product consistent with an outbox high-water mark
  H; the replica is replaced by it, then the consumer catches up with GET /events?after=H
  through the normal apply path, so nothing after H is missed and nothing is applied twice
  (the inbox and version checks make the overlap with the queue harmless). A product the
  export lacks was deleted at the source: its row becomes a tombstone at the delete's
  version (GET /products/{id} answers 410 with it), so an older event still queued or
  waiting on the apply lock is found stale instead of bringing the product back.
  The catch-up is the only path for events after H that the queue lost: a page it cannot
  read fails the resync (the report says how far it got), it never ends it early.

Both hold the apply lock, so the batch worker never interleaves with a resync, and both
are safe while events keep flowing. Results are data: what was fetched, changed, removed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from sqlalchemy import select, update

from harness.contract import envelope as env
from reference_services.consumer.applier import Applier, IncomingMessage, RemoteProduct
from reference_services.consumer.models import replica_products


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
        remote = {pid: self.fetch(pid) for pid in sorted(set(ids))}
        report.fetched = len(remote)
        with self.apply_lock, self.applier.writer.begin() as conn:
            current = {row.id: row for row in conn.execute(
                select(replica_products).where(replica_products.c.id.in_(list(remote))))}
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
            self.applier.write_rows(conn, rows)
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
            response = self._get("/export")
            if response.status_code != 200:
                raise ResyncError(f"publisher answered {response.status_code} for /export")
            lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
            header, exported = lines[0], lines[1:]
            report.high_water_mark = int(header["high_water_mark"])
            report.fetched = len(exported)
            with self.applier.writer.begin() as conn:
                current = {row.id: row for row in conn.execute(select(replica_products))}
                rows = []
                for item in exported:
                    new = {**{k: item[k] for k in env.PRODUCT_FIELDS},
                           "version": item["version"], "deleted": False}
                    row = current.get(item["id"])
                    if row is None or any(getattr(row, k) != v for k, v in new.items()):
                        rows.append({"id": item["id"], **new})
                        report.changed_ids.append(item["id"])
                live = {item["id"] for item in exported}
                gone = [pid for pid, row in current.items() if pid not in live and not row.deleted]
                for pid in gone:
                    conn.execute(update(replica_products)
                                 .where(replica_products.c.id == pid)
                                 .values(deleted=True,
                                         version=self._tombstone_version(pid, current[pid])))
                report.changed = len(rows)
                report.removed = len(gone)
                report.changed_ids.extend(gone)
                self.applier.write_rows(conn, rows)
        report.caught_up_to = report.high_water_mark
        if self.applier.variant != "skip_catch_up":
            self._catch_up(report)
        # else BUG (variant skip_catch_up): everything after the export is left to the
        # queue, which holds nothing that it lost before the resync.
        report.duration_s = round(time.monotonic() - began, 4)
        self.history.append(report.to_dict())
        return report

    def _tombstone_version(self, pid: int, row: Any) -> int:
        """The version a product the export lacks was deleted at, or the row's own when
        the publisher never had it (404)."""
        product = self.fetch(pid)
        return int(max(row.version, product.version) if product is not None else row.version)

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
            messages = [IncomingMessage(env.from_event(e).encode(), False, time.time())
                        for e in events]
            with self.apply_lock:
                self.applier.apply_batch(messages)
            report.caught_up_events += len(events)
            report.caught_up_to = int(events[-1]["sequence"])


def _stopped(report: ResyncReport, why: str) -> ResyncError:
    return ResyncError(f"catch-up stopped: {why}; the replica holds the export at "
                       f"{report.high_water_mark} and events up to {report.caught_up_to}: "
                       "run the full resync again")
