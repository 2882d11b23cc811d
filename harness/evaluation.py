"""Judging a scenario from what was collected: pure functions, no I/O.

The runner collects (final states, published events, deliveries, dead letters, fault
records, the integrity phase's record) and hands them here, so the same judgement can be
re-run on a stored run's files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness import checkers
from harness.checkers.base import CheckResult
from harness.checkers.recovery import assess_faults
from harness.collected import Collected, SecondConsumerData

Rows = list[dict[str, Any]]

__all__ = ["Collected", "Evaluation", "SecondConsumerData", "evaluate", "repaired_ids"]


@dataclass
class Evaluation:
    checks: list[CheckResult]
    faults: Rows  # the fault records with their assessed impact and recovery
    metrics: dict[str, Any] = field(default_factory=dict)


def evaluate(c: Collected) -> Evaluation:
    # Each fault is judged by the replication of the consumer it hit.
    hit_second = [f for f in c.faults if f.get("target") == "consumer2"]
    faults = [*assess_faults([f for f in c.faults if f.get("target") != "consumer2"],
                             c.published, c.deliveries),
              *assess_faults(hit_second, c.published,
                             c.second.deliveries if c.second else [])]
    repaired = repaired_ids(c.integrity)
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
    checks = [checkers.progress(c.ops), _convergence(c),
              _noting(checkers.no_lost_updates(kept, c.deliveries, repaired), dropped),
              _noting(checkers.effect_once(kept, c.deliveries, repaired), dropped),
              checkers.no_stale_overwrite(c.deliveries),
              checkers.accounting(c.deliveries, c.dead_letters, poison or None,
                                  reasons or None, c.broker_dead_letters)]
    if c.second is not None:
        checks.extend(_second_consumer_checks(c, c.second, faults))
    metrics: dict[str, Any] = {}
    if c.integrity is not None:
        checks.append(_integrity_check(c.integrity))
        metrics["integrity"] = _integrity_metrics(c.integrity)
    if c.faults_planned:
        checks.append(checkers.fault_was_active(faults, c.faults_planned))
    recoveries = [f["recovery_s"] for f in faults if "recovery_s" in f]
    if recoveries:
        # None (never caught up) dominates: the report must not hide it behind a max.
        metrics["recovery_s"] = (None if None in recoveries
                                 else max(r for r in recoveries if r is not None))
    return Evaluation(checks, faults, metrics)


def _convergence(c: Collected) -> CheckResult:
    result = checkers.compare_datasets(c.source, c.replica)
    if c.converged_after_s is None:
        return CheckResult("convergence", False,
                           f"not converged within {c.converge_timeout_s:.0f}s: "
                           + result.details, result.counterexample)
    if not result.ok:
        return CheckResult("convergence", False,
                           f"matched, then diverged within the {c.settle_s:.1f}s settle "
                           "window: " + result.details, result.counterexample)
    return result


def _second_consumer_checks(c: Collected, second: SecondConsumerData,
                            faults: Sequence[dict[str, Any]]) -> list[CheckResult]:
    """consumer2 gets its own invariants; and the first consumer must not feel consumer2's
    faults (fan-out: one subscriber's outage is not another's)."""
    repaired: set[int] | None = None if second.initial_sync else set()
    suffix = "[consumer2]"
    checks = [_renamed(checkers.compare_datasets(c.source, second.replica), suffix),
              _renamed(checkers.no_lost_updates(c.published, second.deliveries, repaired),
                       suffix),
              _renamed(checkers.effect_once(c.published, second.deliveries, repaired), suffix),
              _renamed(checkers.no_stale_overwrite(second.deliveries), suffix)]
    windows = [(f["at"], f["healed_at"]) for f in faults if f.get("target") == "consumer2"]
    if windows:
        checks.append(checkers.unaffected(c.published, c.deliveries, windows, max_lag_s=1.0))
    return checks


def _integrity_check(integrity: dict[str, Any]) -> CheckResult:
    if integrity["resync"] == "auto":
        return checkers.auto_repaired(integrity.get("auto_ids", []),
                                      bool(integrity.get("converged_after_repair")))
    return checkers.integrity_restored(
        integrity.get("detected_ids"), integrity["true_ids"],
        bool(integrity.get("converged_after_repair")), integrity["resync"])


def _integrity_metrics(integrity: dict[str, Any]) -> dict[str, Any]:
    keys = ("outcome", "description", "comparisons", "kinds", "repair_s",
            "converged_after_repair", "sample", "auto_resyncs")
    return {**{k: integrity[k] for k in keys if k in integrity},
            "found": len(integrity.get("detected_ids") or integrity.get("auto_ids") or []),
            "truly_diverged": len(integrity.get("true_ids", []))}


def _renamed(check: CheckResult, suffix: str) -> CheckResult:
    return CheckResult(f"{check.name}{suffix}", check.ok, check.details, check.counterexample)


def _noting(check: CheckResult, dropped: set[tuple[str, int]]) -> CheckResult:
    if not dropped:
        return check
    return CheckResult(check.name, check.ok,
                       f"{check.details} ({len(dropped)} events dropped on purpose by the "
                       "injected fault are left to the integrity checks)",
                       check.counterexample)


def repaired_ids(integrity: dict[str, Any] | None) -> set[int] | None:
    """Ids a resync rewrote: their lost events were superseded by the repair. A full resync
    rewrites every product (None = all)."""
    if integrity is None:
        return set()
    if integrity["resync"] == "full":
        return None
    if integrity["resync"] == "auto":
        return set(integrity.get("auto_ids", []))
    report = integrity.get("resync_report", {})
    return set(report.get("changed_ids", [])) | set(integrity.get("detected_ids") or [])
