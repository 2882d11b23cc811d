"""Checks for message-level chaos and resync (pure functions).

- no_stale_overwrite: a replica row never goes back to an older version;
- accounting: every delivery has an outcome, and every injected poison message is
  dead-lettered with a reason that names what is wrong with it;
- integrity_restored: divergence was detected, the ids found cover the ids that truly
  diverged, and the replica converged after the repair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.checkers.base import CheckResult, sample

KNOWN_OUTCOMES = frozenset({"applied", "deduplicated", "stale", "resynced", "dead_lettered"})


def no_stale_overwrite(deliveries: Sequence[dict[str, Any]]) -> CheckResult:
    newest: dict[str, int] = {}
    regressions: list[str] = []
    for d in sorted(deliveries, key=lambda d: d["id"]):
        aggregate, version = d.get("aggregate_id"), d.get("version")
        if aggregate is None or version is None:
            continue
        if d["outcome"] == "applied" and version <= newest.get(aggregate, 0):
            regressions.append(f"product {aggregate} went from v{newest[aggregate]} "
                               f"back to v{version}")
        if d["outcome"] in ("applied", "stale", "resynced"):
            newest[aggregate] = max(newest.get(aggregate, 0), version)
    if regressions:
        return CheckResult("no_stale_overwrite", False,
                           f"stale overwrites: {len(regressions)} older versions applied over "
                           f"newer ones ({sample(regressions, 3)})",
                           {"regressions": regressions[:100]})
    return CheckResult("no_stale_overwrite", True,
                       f"no row went back to an older version ({len(newest)} products)")


def accounting(deliveries: Sequence[dict[str, Any]], dead_letters: Sequence[dict[str, Any]],
               poison_injected: Mapping[str, int] | None = None,
               expected_reasons: Mapping[str, str] | None = None,
               broker_dead_letters: int | None = None) -> CheckResult:
    unknown = [d for d in deliveries if d["outcome"] not in KNOWN_OUTCOMES]
    without_reason = [d for d in dead_letters if not d.get("reason")]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} deliveries with no known outcome")
    if without_reason:
        problems.append(f"{len(without_reason)} dead letters without a reason")
    detail: dict[str, Any] = {}
    if broker_dead_letters is not None and broker_dead_letters < len(dead_letters):
        problems.append(f"{len(dead_letters)} dead letters stored, only "
                        f"{broker_dead_letters} in the broker-side dead-letter queue")
    if poison_injected is not None:
        injected = sum(poison_injected.values())
        if len(dead_letters) != injected:
            problems.append(f"poison injected {injected}, dead-lettered {len(dead_letters)}")
        for kind, substring in (expected_reasons or {}).items():
            want = poison_injected.get(kind, 0)
            got = sum(1 for d in dead_letters if substring in d.get("reason", ""))
            detail[kind] = {"injected": want, "dead_lettered": got}
            if got < want:
                problems.append(f"{kind}: {want} injected, {got} dead-lettered with a reason "
                                f"containing {substring!r}")
    counts: dict[str, int] = {}
    for d in deliveries:
        counts[d["outcome"]] = counts.get(d["outcome"], 0) + 1
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    if problems:
        return CheckResult("accounting", False, "accounting broken: " + "; ".join(problems),
                           {"by_kind": detail, "outcomes": counts})
    return CheckResult("accounting", True,
                       f"{len(deliveries)} deliveries all accounted for ({summary})"
                       + (f"; {len(dead_letters)} dead letters match the poison injected"
                          if poison_injected is not None else ""),
                       {"by_kind": detail, "outcomes": counts})


def integrity_restored(detected_ids: Sequence[int] | None, true_ids: Sequence[int],
                       converged_after_repair: bool, repair: str) -> CheckResult:
    found, truth = set(detected_ids or ()), set(true_ids)
    example = {"found": sorted(found)[:100], "truly_diverged": sorted(truth)[:100]}
    if not truth:
        return CheckResult("integrity_restored", False,
                           "nothing diverged before the repair: the scenario proved nothing",
                           example)
    if detected_ids is None:
        return CheckResult("integrity_restored", False,
                           f"{len(truth)} ids diverged but verification reported none "
                           f"({sample(sorted(truth))})", example)
    missed = sorted(truth - found)
    if missed:
        return CheckResult("integrity_restored", False,
                           f"verification missed {len(missed)} of {len(truth)} divergent ids "
                           f"({sample(missed)})", example)
    if not converged_after_repair:
        return CheckResult("integrity_restored", False,
                           f"found all {len(truth)} divergent ids, but the replica did not "
                           f"converge after the {repair} resync", example)
    return CheckResult("integrity_restored", True,
                       f"verification found {len(found)} ids ({len(truth)} truly diverged: "
                       f"{sample(sorted(truth), 3)}); {repair} resync converged", example)


def auto_repaired(changed_ids: Sequence[int], converged: bool) -> CheckResult:
    """With --auto-resync known, the consumer's own verification must have found and
    repaired the divergence (at least one row rewritten), and the replica converged."""
    if not changed_ids:
        return CheckResult("auto_repaired", False,
                           "the consumer never repaired anything by itself: either nothing "
                           "diverged (the fault proved nothing) or its verification missed it")
    if not converged:
        return CheckResult("auto_repaired", False,
                           f"the consumer rewrote {len(changed_ids)} rows by itself but the "
                           "replica did not converge", {"changed": list(changed_ids)[:100]})
    return CheckResult("auto_repaired", True,
                       f"the consumer found and rewrote {len(changed_ids)} rows by itself "
                       f"({sample(sorted(changed_ids), 3)}); converged",
                       {"changed": list(changed_ids)[:100]})
