"""Judging a scenario from what was collected: pure functions, no I/O.

The runner collects (final states, published events, deliveries, dead letters, fault
records, the integrity phase's record) and hands them here, so the same judgement can be
re-run on a stored run's files.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from harness import checkers
from harness.checkers import authorization, observed
from harness.checkers.acknowledgement import committed_without_ack
from harness.checkers.base import CheckResult, unknown
from harness.checkers.delivery import Excuses
from harness.checkers.recovery import assess_faults
from harness.collected import Collected, ConsumerData, ConsumerObservation
from harness.consumers import FIRST, owner
from harness.contract.grants import RESTRICTED_FIELDS
from harness.contract.outcomes import RESYNCED

Rows = list[dict[str, Any]]

__all__ = ["Collected", "ConsumerData", "Evaluation", "check_safe", "evaluate",
           "resync_excuses"]


@dataclass
class Evaluation:
    checks: list[CheckResult]
    faults: Rows  # the fault records with their assessed impact and recovery
    metrics: dict[str, Any] = field(default_factory=dict)


def evaluate(c: Collected) -> Evaluation:
    excused = resync_excuses(c.integrity, c.observed.resyncs if c.observed else ())
    # Events a resync brought in need no delivery of their own, so recovery does not wait
    # for them.
    delivered_path = [e for e in c.published if not excused.covers(e)]
    # Each fault is judged by the replication of the consumer it hit (its process, one of
    # its instances, or one of its links); any other fault by the first consumer's.
    hit = {key: [f for f in c.faults if _judged_by(f, c) == key]
           for key in (FIRST, *c.other_consumers)}
    faults = assess_faults(hit[FIRST], delivered_path, c.deliveries)
    for key, other in c.other_consumers.items():
        faults += assess_faults(hit[key], c.published, other.deliveries)
    if c.tap is not None:
        tap = c.tap
        faults = [_with_tap_evidence(f, tap) for f in faults]
    poison: dict[str, int] = {}
    for record in faults:
        for kind, count in record.get("poison", {}).items():
            poison[kind] = poison.get(kind, 0) + count
    reasons = {k: v for f in faults for k, v in f.get("expected_reasons", {}).items()}
    # Events an injected fault destroyed on purpose are not the system's loss; the
    # integrity checks judge what became of them.
    dropped = {(d["aggregate_id"], d["version"]) for f in faults
               for d in f.get("relay_fault", {}).get("dropped", [])}
    kept = [e for e in c.published if (e["aggregate_id"], e["version"]) not in dropped]
    checks = [check_safe("progress", lambda: checkers.progress(
                  c.ops, c.writes_planned, c.min_write_share)),
              check_safe("convergence", lambda: _convergence(c)),
              _noting(check_safe("no_lost_updates", lambda: checkers.no_lost_updates(
                  kept, c.deliveries, excused)), dropped),
              _noting(check_safe("effect_once", lambda: checkers.effect_once(
                  kept, c.deliveries, excused)), dropped),
              check_safe("no_stale_overwrite",
                         lambda: checkers.no_stale_overwrite(c.deliveries)),
              check_safe("accounting", lambda: checkers.accounting(
                  c.deliveries, c.dead_letters, poison or None, reasons or None,
                  c.broker_dead_letters))]
    for key, other in c.other_consumers.items():
        checks.extend(_other_consumer_checks(c, key, other))
    checks.extend(_unaffected_checks(c, faults))
    checks.extend(_observed_checks(c, faults))
    if any(f.get("target") == "publisher" for f in c.faults) \
            or any(op.get("indeterminate") for op in c.ops):
        checks.append(check_safe("committed_without_ack", lambda: committed_without_ack(
            c.ops, c.published, c.deliveries)))
    metrics: dict[str, Any] = {}
    if c.integrity is not None:
        integrity = c.integrity
        checks.append(check_safe(
            "auto_repaired" if integrity.get("resync") == "auto" else "integrity_restored",
            lambda: _integrity_check(integrity, c.deliveries)))
        metrics["integrity"] = _integrity_metrics(c.integrity)
    if any(f.get("access_probe") for f in c.faults):
        checks.append(check_safe(authorization.CREDENTIALS,
                                 lambda: authorization.credentials_enforced(c.faults)))
    if c.faults_planned:
        checks.append(check_safe("fault_was_active", lambda: checkers.fault_was_active(
            faults, c.faults_planned)))
    recoveries = [f["recovery_s"] for f in faults if "recovery_s" in f]
    if recoveries:
        # None (never caught up) dominates: the report must not hide it behind a max.
        metrics["recovery_s"] = (None if None in recoveries
                                 else max(r for r in recoveries if r is not None))
    return Evaluation(checks, faults, metrics)


def _replica_read(api_rows: Rows, seen: ConsumerObservation | None) -> Rows:
    """The replica as the harness read it from the consumer's database file (live rows);
    as the consumer's API reported it for a run stored before the observers existed."""
    if seen is None:
        return api_rows
    return [r for r in seen.replica_db if not r["deleted"]]


def _granted(c: Collected, key: str) -> tuple[str, ...]:
    """The restricted fields consumer `key` may read (all, in a run stored before grants
    existed)."""
    return tuple(c.grants.get(key, RESTRICTED_FIELDS))


def _source_for(c: Collected, key: str) -> Rows:
    """The source's rows as consumer `key` must hold them: its view."""
    return authorization.source_view(c.source, _granted(c, key))


def _convergence(c: Collected) -> CheckResult:
    result = checkers.compare_datasets(_source_for(c, FIRST),
                                       _replica_read(c.replica, c.observed))
    if c.converged_after_s is None:
        return CheckResult("convergence", False,
                           f"not converged within {c.converge_timeout_s:.0f}s: "
                           + result.details, result.counterexample)
    if not result.ok:
        return CheckResult("convergence", False,
                           f"matched, then diverged within the {c.settle_s:.1f}s settle "
                           "window: " + result.details, result.counterexample)
    return result


def _judged_by(fault: dict[str, Any], c: Collected) -> str:
    """The key of the consumer whose replication shows a fault's effect."""
    key = owner(str(fault.get("target", "")))
    return key if key in c.other_consumers else FIRST


def _other_consumer_checks(c: Collected, key: str, other: ConsumerData) -> list[CheckResult]:
    """Every consumer but the first gets its own invariants, suffixed with its key."""
    excused = resync_excuses(None, other.observed.resyncs if other.observed else ())
    suffix = f"[{key}]"
    return [_renamed(check_safe("convergence", lambda: checkers.compare_datasets(
                _source_for(c, key), _replica_read(other.replica, other.observed))), suffix),
            _renamed(check_safe("no_lost_updates", lambda: checkers.no_lost_updates(
                c.published, other.deliveries, excused)), suffix),
            _renamed(check_safe("effect_once", lambda: checkers.effect_once(
                c.published, other.deliveries, excused)), suffix),
            _renamed(check_safe("no_stale_overwrite", lambda: checkers.no_stale_overwrite(
                other.deliveries)), suffix)]


def _unaffected_checks(c: Collected, faults: Sequence[dict[str, Any]]) -> list[CheckResult]:
    """Fan-out: one subscriber's outage is not another's. While a fault meant to slow one
    consumer's replication was live, every other consumer subscribed by then must keep
    replicating normally (`unaffected` for the first, `unaffected[<key>]` for others).
    Faults not meant to slow replication (an instant kill, a poison message) leave too
    short a window to judge, and a fault on no consumer in particular affects all."""
    logs = {FIRST: (c.deliveries, None),
            **{key: (o.deliveries, o.joined_at) for key, o in c.other_consumers.items()}}
    checks = []
    for key, (deliveries, joined_at) in logs.items():
        windows = [(float(f["at"]), float(f["healed_at"]), float(f["expected_lag_s"]))
                   for f in faults
                   if f.get("expected_lag_s") is not None
                   and owner(str(f.get("target", ""))) in logs.keys() - {key}
                   and (joined_at is None or float(f["at"]) >= joined_at)]
        if windows:
            checks.append(_renamed(check_safe("unaffected", partial(
                checkers.unaffected, c.published, deliveries, windows)),
                "" if key == FIRST else f"[{key}]"))
    return checks


def _integrity_check(integrity: dict[str, Any], deliveries: Rows) -> CheckResult:
    if integrity["resync"] == "auto":
        # The consumer also repairs by itself when a stock delta finds its previous version
        # missing: it fetches the product (outcome "resynced") instead of guessing.
        fetched = {int(d["aggregate_id"]) for d in deliveries
                   if d["outcome"] == RESYNCED and d.get("aggregate_id") is not None}
        return checkers.auto_repaired(sorted({*integrity.get("auto_ids", []), *fetched}),
                                      integrity.get("true_ids"),
                                      bool(integrity.get("converged_after_repair")))
    return checkers.integrity_restored(
        integrity.get("detected_ids"), integrity.get("true_ids"),
        bool(integrity.get("converged_after_repair")), integrity["resync"],
        integrity.get("sample"))


def _integrity_metrics(integrity: dict[str, Any]) -> dict[str, Any]:
    keys = ("outcome", "description", "comparisons", "kinds", "repair_s",
            "converged_after_repair", "sample", "auto_resyncs")
    return {**{k: integrity[k] for k in keys if k in integrity},
            "found": len(integrity.get("detected_ids") or integrity.get("auto_ids") or []),
            "truly_diverged": (len(integrity["true_ids"])
                               if integrity.get("true_ids") is not None else None)}


def _with_tap_evidence(fault: dict[str, Any], tap: Rows) -> dict[str, Any]:
    """A fault that injected messages every reader reads (Kafka) is felt only if the
    broker tap read them too (harness/checkers/observed.py, tap_saw_injection)."""
    seen = observed.tap_saw_injection(fault, tap)
    if seen is None:
        return fault
    ok, text = seen
    return {**fault, "impact_observed": fault.get("impact_observed", True) and ok,
            "impact": f"{fault['impact']}; {text}" if fault.get("impact") else text}


def _observed_checks(c: Collected, faults: Sequence[dict[str, Any]]) -> list[CheckResult]:
    """The checks resting on the harness's own observation (harness/checkers/observed.py),
    per consumer with its suffix; none for a run stored before the observers existed.
    They judge the system under test by what it put on the broker: the tap's records less
    the messages the faults injected themselves where the tap reads those too."""
    if c.tap is None:
        return []
    tap, tap_status = observed.broker_carried(c.tap, faults), c.tap_status
    left_out = len(c.tap) - len(tap)
    injected = observed.injected_events(faults)
    excuses = observed.Excuses.from_faults(faults)
    checks = [check_safe("acknowledged_writes_published",
                         lambda: observed.acknowledged_writes_published(
                             c.ops, tap, tap_status, excuses)),
              check_safe("tap_matches_outbox", lambda: observed.tap_matches_outbox(
                  tap, tap_status, c.published, excuses, left_out))]
    consumers = [(FIRST, "", c.observed, c.deliveries, c.replica),
                 *((key, f"[{key}]", o.observed, o.deliveries, o.replica)
                   for key, o in c.other_consumers.items())]
    keys = [key for key, *_ in consumers]
    for key, suffix, seen, deliveries, api in consumers:
        if seen is None:
            continue
        # Judged against what this consumer may see (harness/checkers/authorization.py).
        granted = _granted(c, key)
        for check, run in observed.consumer_checks(
                key, keys, seen, authorization.tap_view(tap, c.published, granted),
                tap_status, authorization.events_view(c.published, granted),
                _source_for(c, key), deliveries, api, excuses, injected):
            checks.append(_renamed(check_safe(check, run), suffix))
        if set(granted) < set(RESTRICTED_FIELDS):
            checks.append(_renamed(check_safe(authorization.NAME, partial(
                authorization.restricted_data_contained, key, granted, seen.replica_db,
                seen.samples, tap, seen.resyncs)), suffix))
    return checks


def check_safe(name: str, checker: Callable[[], CheckResult]) -> CheckResult:
    """Run one checker; if it raises, its check `name` is "unknown" (Jepsen's check-safe):
    a bug in one checker must neither hide the other checks' results nor read as a pass,
    and the scenario's verdict becomes "error"."""
    try:
        return checker()
    except Exception as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return unknown(name, f"checker raised {type(exc).__name__}: {exc} "
                             f"(at {Path(frame.filename).name}:{frame.lineno})")


def _renamed(check: CheckResult, suffix: str) -> CheckResult:
    return CheckResult(f"{check.name}{suffix}", check.ok, check.details, check.counterexample,
                       check.status)


def _noting(check: CheckResult, dropped: set[tuple[str, int]]) -> CheckResult:
    if not dropped:
        return check
    return CheckResult(check.name, check.ok,
                       f"{check.details} ({len(dropped)} events dropped on purpose by the "
                       "injected fault are left to the integrity checks)",
                       check.counterexample, check.status)


def resync_excuses(integrity: dict[str, Any] | None,
                   resyncs: Sequence[dict[str, Any]] = ()) -> Excuses:
    """What a consumer's resyncs made up for (checkers.delivery.Excuses), from the
    integrity phase's record and from the consumer's own resync reports (`GET /resync`,
    e.g. a late joiner's initial sync). A partial or automatic resync excuses the products
    it rewrote (and, for a partial one, those verification found); a full one excuses
    only the events up to its export's high-water mark, never a product as a whole."""
    ids: set[int] = set()
    reports = list(resyncs)
    if integrity is not None:
        if integrity["resync"] == "auto":
            ids.update(integrity.get("auto_ids", []))
        elif integrity["resync"] == "partial":
            ids.update(integrity.get("detected_ids") or [])
        reports.append(integrity.get("resync_report") or {})
    marks = []
    for report in reports:
        if report.get("kind") == "full":
            # A full resync that failed reports no mark, and then excuses nothing.
            if report.get("high_water_mark") is not None:
                marks.append(int(report["high_water_mark"]))
        else:
            ids.update(report.get("changed_ids", []))
    return Excuses(frozenset(int(i) for i in ids), tuple(marks))
