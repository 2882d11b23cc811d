"""Periodic integrity check of the replica against the publisher's snapshot.

Every interval it fetches GET /snapshot from the publisher (count, per-category counts,
dataset hash, high-water mark) and compares it with the replica's own summary. While
events are flowing the replica is legitimately a little behind, so a mismatch is reported
as "behind" until the replica has processed the publisher's high-water mark; only then is
it "diverged". It also keeps client-side counters of the call itself, which make faults on
the consumer -> publisher link observable.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from reference_services.consumer.models import inbox
from reference_services.consumer.queries import replica_snapshot

log = logging.getLogger(__name__)


@dataclass
class VerifierStats:
    runs: int = 0
    failures: int = 0
    latency_ms_total: float = 0.0
    last_outcome: str = "not run"
    last_checked_at: float = 0.0


class Verifier:
    def __init__(self, engine: Engine, client: httpx.Client, interval_s: float) -> None:
        self.engine = engine
        self.client = client
        self.interval_s = interval_s
        self.stats = VerifierStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="verifier", daemon=True)

    def start(self) -> None:
        if self.interval_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.verify_once()

    def verify_once(self) -> dict[str, Any]:
        began = time.monotonic()
        try:
            response = self.client.get("/snapshot", timeout=2.0)
            response.raise_for_status()
            source = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            self.stats.runs += 1
            self.stats.failures += 1
            self.stats.latency_ms_total += (time.monotonic() - began) * 1000
            self.stats.last_outcome = f"unreachable: {type(exc).__name__}"
            return {"outcome": self.stats.last_outcome}
        self.stats.runs += 1
        self.stats.latency_ms_total += (time.monotonic() - began) * 1000
        replica = replica_snapshot(self.engine)
        with self.engine.connect() as conn:
            processed_upto = conn.execute(select(func.max(inbox.c.sequence))).scalar_one()
        same = all(source[k] == replica[k] for k in ("count", "categories", "hash"))
        if same:
            outcome = "in_sync"
        elif (processed_upto or 0) < source["high_water_mark"]:
            outcome = "behind"
        else:
            outcome = "diverged"
        self.stats.last_outcome = outcome
        self.stats.last_checked_at = time.time()
        return {"outcome": outcome, "source": source, "replica": replica}
