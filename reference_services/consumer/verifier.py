"""Periodic integrity check of the replica against the publisher's snapshot.

Every interval it fetches GET /snapshot from the publisher (count, per-category counts,
dataset hash, high-water mark) and compares it with the replica's own summary. While
events are flowing the replica is legitimately a little behind, so a mismatch is reported
as "behind" unless the replica has processed exactly the snapshot's high-water mark; only
then is it "diverged" (a replica past that mark holds rows newer than the snapshot). It
also keeps client-side counters of the call itself, which make faults on the consumer ->
publisher link observable.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from harness.contract.dataset import REPLICATED_FIELDS
from reference_services.consumer.integrity import (
    FIRST_LEVEL,
    bisect_divergent,
    compare_rows,
    sample_ids,
    verify,
)
from reference_services.consumer.models import inbox
from reference_services.consumer.queries import (
    replica_range_hashes,
    replica_rows,
    replica_snapshot,
)
from reference_services.consumer.resync import fetch_products

log = logging.getLogger(__name__)


@dataclass
class VerifierStats:
    runs: int = 0
    failures: int = 0
    latency_ms_total: float = 0.0
    last_outcome: str = "not run"
    auto_resyncs: int = 0
    auto_resynced_ids: int = 0
    last_checked_at: float = 0.0


# Divergence the consumer can diagnose and safely repair by itself: events that never
# arrived or arrived late. A "conflict" (same version, other values) means a bug on one
# side: resyncing before someone has looked would hide it, or repeat it
# (docs/architecture.md, "Why a conflict waits for a human").
AUTO_REPAIRABLE = ("missing", "behind", "extra")

# On a partitioned log (Kafka) the events of one source travel on several partitions, so
# the consumer can process the high-water mark's event while earlier ones are still on
# their way on other partitions (not yet stored by the broker, or not yet read). So a
# replica at the high-water mark also counts as behind while the sequences below it that
# it has not processed are still being filled in: until their number has stayed the same
# for this long. What stays missing longer is a real gap (events never published, or
# lost), for the comparison to judge. On Tansu, without this, verification ran while the
# last events of some partitions were still arriving (applied up to 0.8 s later), and
# missed the ids they repaired (publisher_wrong_data seed 1, broker_data_loss seed 3).
IN_FLIGHT_QUIET_S = 3.0


class Verifier:
    def __init__(self, engine: Engine, client: httpx.Client, interval_s: float,
                 auto_resync: Callable[[list[int]], object] | None = None) -> None:
        self.engine = engine
        self.client = client
        self.interval_s = interval_s
        self.auto_resync = auto_resync
        self._rng = random.Random()  # which rows to spot-check: any spread will do
        self.stats = VerifierStats()
        # Sequences at or below the high-water mark not processed, and since when that
        # number has stayed the same (monotonic); verify_once runs on several threads.
        self._unprocessed: tuple[int, float] = (-1, 0.0)
        self._unprocessed_lock = threading.Lock()
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
            try:
                report = self.verify_once(bisect=self.auto_resync is not None)
            except DBAPIError as exc:
                # The replica's database is unreachable: nothing to compare; next round
                # tries again. Not a failure of the call to the publisher (stats.failures).
                self.stats.last_outcome = f"database unavailable: {type(exc.orig).__name__}"
                log.warning("verification: replica database unavailable: %s", exc.orig)
                continue
            ids = sorted(i for kind in AUTO_REPAIRABLE for i in report.get("kinds", {})
                         .get(kind, []))
            if ids and self.auto_resync is not None:
                try:
                    self.auto_resync(ids)
                except RuntimeError as exc:  # publisher unreachable: next round retries
                    log.warning("automatic resync of %d ids failed: %s", len(ids), exc)
                else:
                    self.stats.auto_resyncs += 1
                    self.stats.auto_resynced_ids += len(ids)

    def _source_ranges(self, bounds: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        spec = ",".join(f"{lo}-{hi}" for lo, hi in bounds)
        response = self.client.get("/ranges", params={"bounds": spec}, timeout=30.0)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def _replica_ranges(self, bounds: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        return replica_range_hashes(self.engine, list(bounds))

    def find_divergent(self, source: dict[str, Any], replica: dict[str, Any]) -> dict[str, Any]:
        """Bisect id ranges against the publisher's range hashes: O(k log n) comparisons for
        k divergent ids among n; then classify each id by comparing the rows themselves."""
        lo = min(source["id_range"][0], replica["id_range"][0])
        hi = max(source["id_range"][1], replica["id_range"][1])
        began = time.monotonic()
        try:
            result = bisect_divergent(self._source_ranges, self._replica_ranges, lo, hi,
                                      first_level=FIRST_LEVEL)
        except httpx.HTTPError as exc:
            return {"error": f"publisher unreachable during bisection: {exc}"}
        kinds = self._classify(list(result.divergent_ids))
        return {"divergent_ids": list(result.divergent_ids), "comparisons": result.comparisons,
                "round_trips": result.round_trips, "kinds": kinds,
                "bisection_s": round(time.monotonic() - began, 4)}

    def _source_rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """The publisher's live rows among `ids` (batched); an id it lacks is deleted there
        or never existed. Raises httpx.HTTPError when the publisher cannot be asked."""
        fetched = fetch_products(self.client, ids)
        return {pid: product.fields for pid, product in fetched.items()
                if product is not None and not product.deleted}

    def _classify(self, ids: list[int]) -> dict[str, list[int]]:
        """missing (never arrived), behind (an older version), extra (deleted at the source),
        conflict (same version, other values: a bug somewhere, to analyse before a resync).
        An unreachable publisher leaves every id unclassified."""
        kinds: dict[str, list[int]] = {"missing": [], "behind": [], "extra": [], "conflict": []}
        try:
            remote = self._source_rows(ids)
        except httpx.HTTPError:
            return kinds
        local = {r["id"]: r for r in replica_rows(self.engine, ids)}
        for pid in ids:
            theirs = remote.get(pid)
            mine = local.get(pid)
            if theirs is None:
                kinds["extra"].append(pid)
            elif mine is None:
                kinds["missing"].append(pid)
            elif mine["version"] < theirs["version"]:
                kinds["behind"].append(pid)
            else:
                kinds["conflict"].append(pid)
        return kinds

    def spot_check(self, source: dict[str, Any], replica: dict[str, Any],
                   size: int) -> dict[str, Any]:
        """Compare `size` random ids field by field with the publisher: catches what
        hashes cannot, e.g. a row stored with a digest computed from other values than
        the ones it holds."""
        lo = min(source["id_range"][0], replica["id_range"][0])
        hi = max(source["id_range"][1], replica["id_range"][1])
        ids = sample_ids(self._rng, lo, hi, size)
        try:
            remote = self._source_rows(ids)
        except httpx.HTTPError as exc:
            return {"checked": 0, "error": f"publisher unreachable: {exc}"}
        differing = compare_rows(remote.values(), replica_rows(self.engine, ids),
                                 REPLICATED_FIELDS)
        # The ids themselves, so a reader can tell "equal" from "not checked".
        return {"checked": len(ids), "ids": ids, "differing": differing}

    def _processed_upto(self) -> int:
        """The highest outbox sequence this consumer has processed (0: none yet)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(inbox.c.sequence))).scalar_one() or 0)

    def _still_filling_in(self, high_water_mark: int) -> int:
        """How many sequences at or below `high_water_mark` the consumer has not processed,
        if that number changed within IN_FLIGHT_QUIET_S (events still arriving); else 0."""
        with self.engine.connect() as conn:
            processed = int(conn.execute(
                select(func.count(func.distinct(inbox.c.sequence)))
                .where(inbox.c.sequence <= high_water_mark)).scalar_one())
        unprocessed, now = high_water_mark - processed, time.monotonic()
        with self._unprocessed_lock:
            if unprocessed != self._unprocessed[0]:
                self._unprocessed = (unprocessed, now)
            quiet_s = now - self._unprocessed[1]
        return unprocessed if unprocessed > 0 and quiet_s < IN_FLIGHT_QUIET_S else 0

    def verify_once(self, bisect: bool = False, sample: int = 0) -> dict[str, Any]:
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
        processed_upto = self._processed_upto()
        replica = replica_snapshot(self.engine)
        # A batch committed while the summary was read: it matches no single sequence.
        moved = self._processed_upto() != processed_upto
        same = all(source[k] == replica[k] for k in ("count", "categories", "hash"))
        filling_in = self._still_filling_in(int(source["high_water_mark"]))
        if same:
            outcome = "in_sync"
        elif moved or processed_upto != source["high_water_mark"] or filling_in:
            # Only a replica at exactly the snapshot's high-water mark, with nothing below
            # it still arriving, can be compared with it: below, events are still in
            # flight; above, the replica moved past the snapshot (read first) and holds
            # newer rows than it. Either way: lag.
            outcome = "behind"
        else:
            outcome = "diverged"
        self.stats.last_outcome = outcome
        self.stats.last_checked_at = time.time()
        report: dict[str, Any] = {"outcome": outcome, "source": source, "replica": replica,
                                  "processed_upto": processed_upto,
                                  "description": verify(source, replica).description}
        if bisect and outcome == "diverged":
            report.update(self.find_divergent(source, replica))
        if sample > 0:
            report["sample"] = self.spot_check(source, replica, sample)
        return report
