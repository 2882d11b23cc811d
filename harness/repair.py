"""The integrity phase of a scenario with a Repair: detect, (fix,) resync, re-converge.

It drives the consumer's own integrity verification and resync over its HTTP API, and
records, next to what the consumer found, what truly diverged (the harness's own full
comparison), so integrity_restored can judge the verification itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.checkers.authorization import source_view
from harness.checkers.observed import divergent_by_tap
from harness.consumers import FIRST
from harness.contract.dataset import REPLICATED_FIELDS
from harness.errors import HarnessError, WaitTimeout
from harness.history import History
from harness.scenario import Repair
from harness.sut import SystemUnderTest
from harness.waiting import wait_until

SPOT_CHECK_ROWS = 25


def _post(sut: SystemUnderTest, path: str, body: dict[str, Any],
          timeout_s: float = 60.0) -> dict[str, Any]:
    return dict(sut.consumer_api.post_json(path, body, timeout_s))


def diverging_ids(source: Sequence[dict[str, Any]],
                  replica: Sequence[dict[str, Any]]) -> list[int]:
    """Every id on one side only or differing in a replicated field: the whole truth (the
    convergence check's counterexample keeps only the first 100 of each kind)."""
    src = {int(r["id"]): r for r in source}
    rep = {int(r["id"]): r for r in replica}
    return sorted(src.keys() ^ rep.keys()
                  | {pid for pid in src.keys() & rep.keys()
                     if any(src[pid][f] != rep[pid][f] for f in REPLICATED_FIELDS)})


def _source(sut: SystemUnderTest) -> list[dict[str, Any]]:
    """The source as the first consumer may see it (harness/contract/grants.py)."""
    return source_view(sut.source_rows(), sut.specs[FIRST].grants)


def divergent_ids(sut: SystemUnderTest) -> list[int]:
    return diverging_ids(_source(sut), sut.replica_rows())


def detect_and_repair(sut: SystemUnderTest, repair: Repair, history: History,
                      timeout_s: float, converged: Callable[[], bool],
                      progress: Callable[[str], None]) -> dict[str, Any]:
    record: dict[str, Any] = {"resync": repair.resync}
    if repair.resync == "auto":
        return _await_auto_repair(sut, record, history, timeout_s, converged, progress)
    # The consumer must first process everything published: until then a mismatch is
    # just lag ("behind"), not divergence. Its own test (it processed the source's
    # high-water mark) holds too early on a partitioned log, where the partition with the
    # last event can be done while another still lags: the broker must also show nothing
    # left waiting for it.
    try:
        wait_until(lambda: sut.broker.consumer_queue(sut.consumer_name).ready == 0
                   and _post(sut, "/verify", {})["outcome"] != "behind", timeout_s,
                   "the consumer to process everything published")
    except WaitTimeout as exc:
        record["caught_up"] = False
        record["error"] = str(exc).splitlines()[0]
    record["true_ids"] = divergent_ids(sut)
    report = _post(sut, "/verify", {"bisect": True, "sample": SPOT_CHECK_ROWS})
    record["outcome"] = report["outcome"]
    record["description"] = report.get("description", "")
    record["detected_ids"] = report.get("divergent_ids")
    record["kinds"] = report.get("kinds", {})
    record["comparisons"] = report.get("comparisons")
    record["sample"] = report.get("sample", {})
    progress(f"verification: {report['outcome']} ({record['description']}); found "
             f"{len(record['detected_ids'] or [])} ids with {record['comparisons']} range "
             f"comparisons; {len(record['true_ids'])} truly diverged")
    # Only what verification found is repaired: an id it missed stays wrong, and the
    # convergence and integrity_restored checks then say so.
    ids = record["detected_ids"] or []
    began = time.monotonic()
    resync_report = _resync(sut, repair.resync, ids)
    record["resync_report"] = resync_report
    _time_convergence(record, began, converged, timeout_s,
                      "the replica to converge after the resync")
    progress(f"{repair.resync} resync changed {resync_report.get('changed', 0)} rows in "
             f"{resync_report.get('duration_s', 0)}s; converged: "
             f"{record['converged_after_repair']}")
    history.record("integrity", **record)
    return record


def _time_convergence(record: dict[str, Any], began: float, converged: Callable[[], bool],
                      timeout_s: float, describe: str) -> None:
    """Sets converged_after_repair and repair_s (seconds since `began`) in the record."""
    try:
        wait_until(converged, timeout_s, describe)
        record["converged_after_repair"] = True
    except WaitTimeout:
        record["converged_after_repair"] = False
    record["repair_s"] = round(time.monotonic() - began, 3)


def _await_auto_repair(sut: SystemUnderTest, record: dict[str, Any], history: History,
                       timeout_s: float, converged: Callable[[], bool],
                       progress: Callable[[str], None]) -> dict[str, Any]:
    """The consumer runs with --auto-resync known: the harness only watches."""
    _time_convergence(record, time.monotonic(), converged, timeout_s,
                      "the consumer to repair itself and converge")
    reports = sut.consumer_api.resync_history()
    autos = [r for r in reports if r.get("kind") == "auto"]
    record["auto_ids"] = sorted({i for r in autos for i in r.get("changed_ids", [])})
    record["auto_resyncs"] = len(autos)
    # The truth, from the harness's own observation: the ids whose events as the broker
    # carried them cannot produce the source's state.
    record["true_ids"] = divergent_by_tap(sut.tapped(), _source(sut))
    progress(f"consumer repaired itself: {len(autos)} automatic resyncs changed "
             f"{len(record['auto_ids'])} rows; converged: {record['converged_after_repair']}")
    history.record("integrity", **record)
    return record


def _resync(sut: SystemUnderTest, kind: str, ids: list[int]) -> dict[str, Any]:
    body: dict[str, Any] = {"full": True} if kind == "full" else {"ids": ids}
    if kind == "partial" and not ids:
        return {"changed": 0, "duration_s": 0, "skipped": "no ids to resync"}
    try:
        return _post(sut, "/resync", body, timeout_s=120.0)
    except HarnessError as exc:
        return {"error": str(exc)}
