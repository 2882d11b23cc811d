"""Partial and full resync of the replica from the publisher.

- partial(ids): fetch each product (GET /products/{id}) and overwrite the replica row when
  the publisher's version is the same or newer. "Same" matters: a consumer bug that wrote
  wrong values did so at the right version, and only an overwrite repairs it.
- full(): GET /export gives every live product consistent with an outbox high-water mark
  H; the replica is replaced by it, then the consumer catches up with GET /events?after=H
  through the normal apply path, so nothing after H is missed and nothing is applied twice
  (the inbox and version checks make the overlap with the queue harmless).

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
                if gone:
                    conn.execute(update(replica_products)
                                 .where(replica_products.c.id.in_(gone)).values(deleted=True))
                report.changed = len(rows)
                report.removed = len(gone)
                report.changed_ids.extend(gone)
                self.applier.write_rows(conn, rows)
        report.caught_up_events = self._catch_up(report.high_water_mark)
        report.duration_s = round(time.monotonic() - began, 4)
        self.history.append(report.to_dict())
        return report

    def _catch_up(self, after: int) -> int:
        """Apply events published after the export, through the normal apply path."""
        applied = 0
        for _ in range(10_000):  # bounded: 10k pages of 1000 events
            response = self._get("/events", after=after, limit=1000)
            events = response.json() if response.status_code == 200 else []
            if not events:
                return applied
            messages = [IncomingMessage(env.from_event(e).encode(), False, time.time())
                        for e in events]
            with self.apply_lock:
                self.applier.apply_batch(messages)
            applied += len(events)
            after = events[-1]["sequence"]
        return applied
