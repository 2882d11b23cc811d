"""Checks for message-level chaos and resync (pure functions).

- no_stale_overwrite: a replica row never goes back to an older version;
- accounting: every delivery has an outcome, and every injected poison message is
  dead-lettered with a reason that names what is wrong with it;
- integrity_restored: divergence was detected, the ids found cover the ids that truly
  diverged and not many more, the random spot check agrees with the truth, and the
  replica converged after the repair;
- auto_repaired: the consumer repaired every truly divergent id by itself and converged.

"Truth" is the set of ids the harness itself found divergent (both full datasets compared,
or the broker tap's stream against the source). Without any truth to judge against, these
checks are inconclusive: the run could not show what they need, which is no finding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.checkers.base import CheckResult, inconclusive, sample
from harness.contract.outcomes import APPLIED, FIRST_PROCESSING, KNOWN_OUTCOMES

# Ids verification may report beyond the truly divergent ones: max(EXTRA_IDS_MIN,
# EXTRA_IDS_SHARE of the truth). A verification that reports everything it cannot vouch
# for would make the repair a full copy and the detection meaningless.
EXTRA_IDS_MIN = 2
EXTRA_IDS_SHARE = 0.1


def no_stale_overwrite(deliveries: Sequence[dict[str, Any]]) -> CheckResult:
    newest: dict[str, int] = {}
    regressions: list[str] = []
    for d in sorted(deliveries, key=lambda d: d["id"]):
        aggregate, version = d.get("aggregate_id"), d.get("version")
        if aggregate is None or version is None:
            continue
        if d["outcome"] == APPLIED and version <= newest.get(aggregate, 0):
            regressions.append(f"product {aggregate} went from v{newest[aggregate]} "
                               f"back to v{version}")
        if d["outcome"] in FIRST_PROCESSING:
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


def extra_ids_allowed(truly_diverged: int) -> int:
    """How many reported ids may lie outside the truth: max(2, 10% of it, rounded up)."""
    return max(EXTRA_IDS_MIN, math.ceil(EXTRA_IDS_SHARE * truly_diverged))


def spot_check_disagreements(spot_check: Mapping[str, Any] | None,
                             truth: set[int]) -> list[str]:
    """Where the verification's random spot check (`sample`: the ids it compared field by
    field and those it found differing) contradicts the truth."""
    if not spot_check or "differing" not in spot_check:
        return []
    differing = {int(i) for i in spot_check["differing"]}
    checked = {int(i) for i in spot_check.get("ids", ())}
    problems = []
    wrongly_differing = sorted(differing - truth)
    if wrongly_differing:
        problems.append(f"the spot check reported {len(wrongly_differing)} ids differing that "
                        f"the harness found equal ({sample(wrongly_differing)})")
    wrongly_equal = sorted((checked & truth) - differing)
    if wrongly_equal:
        problems.append(f"the spot check compared {len(wrongly_equal)} truly divergent ids "
                        f"and called them equal ({sample(wrongly_equal)})")
    return problems


def integrity_restored(detected_ids: Sequence[int] | None, true_ids: Sequence[int] | None,
                       converged_after_repair: bool, repair: str,
                       spot_check: Mapping[str, Any] | None = None) -> CheckResult:
    """Verification found the divergence precisely, and the repair made the replica converge.

    Fails when: it reported nothing although ids diverged; it missed a truly divergent id;
    it reported more than the truth allows (found <= truth + max(2, 10% of truth), rounded
    up: `extra_ids_allowed`); its random spot check contradicts the truth; the replica did
    not converge after the resync. Inconclusive when the truth is unknown or empty (the
    fault created no divergence to find)."""
    name = "integrity_restored"
    found, truth = set(detected_ids or ()), set(true_ids or ())
    example = {"found": sorted(found)[:100], "truly_diverged": sorted(truth)[:100]}
    if true_ids is None:
        return inconclusive(name, "the harness recorded no truth for this run: what truly "
                            "diverged is unknown, so verification cannot be judged", example)
    if not truth:
        return inconclusive(name, "nothing diverged before the repair (the harness compared "
                            "both full datasets): the fault created no divergence, so the "
                            f"{repair} repair was not tested", example)
    if detected_ids is None:
        return CheckResult(name, False,
                           f"{len(truth)} ids diverged but verification reported none "
                           f"({sample(sorted(truth))})", example)
    missed = sorted(truth - found)
    if missed:
        return CheckResult(name, False,
                           f"verification missed {len(missed)} of {len(truth)} divergent ids "
                           f"the harness found ({sample(missed)})", example)
    extra = sorted(found - truth)
    allowed = extra_ids_allowed(len(truth))
    if len(extra) > allowed:
        return CheckResult(name, False,
                           f"verification reported {len(found)} ids for {len(truth)} that "
                           f"truly diverged: {len(extra)} never diverged by the harness's "
                           f"comparison ({sample(extra)}); at most {allowed} allowed "
                           f"(max({EXTRA_IDS_MIN}, {EXTRA_IDS_SHARE:.0%} of the truth))",
                           {**example, "extra": extra[:100]})
    disagreements = spot_check_disagreements(spot_check, truth)
    if disagreements:
        return CheckResult(name, False, "; ".join(disagreements),
                           {**example, "spot_check": dict(spot_check or {})})
    if not converged_after_repair:
        return CheckResult(name, False,
                           f"found all {len(truth)} divergent ids, but the replica did not "
                           f"converge after the {repair} resync", example)
    checked = (spot_check or {}).get("checked")
    return CheckResult(name, True,
                       f"verification found {len(found)} ids ({len(truth)} truly diverged: "
                       f"{sample(sorted(truth), 3)}"
                       + (f"; {len(extra)} more, within the {allowed} allowed" if extra else "")
                       + ")"
                       + (f"; its spot check of {checked} rows agrees" if checked else "")
                       + f"; {repair} resync converged", example)


def auto_repaired(changed_ids: Sequence[int], true_ids: Sequence[int] | None,
                  converged: bool) -> CheckResult:
    """With --auto-resync known, the consumer's own verification must have found and
    repaired every truly divergent id (`changed_ids`: the rows it rewrote by itself), and
    the replica converged.

    Rows rewritten beyond the truth are reported, not failed: the periodic verification
    runs while events flow, and rewriting a row that was merely in flight is harmless (a
    resync never overwrites a newer version). Inconclusive when the truth is unknown or
    empty."""
    name = "auto_repaired"
    changed, truth = set(changed_ids), set(true_ids or ())
    example = {"changed": sorted(changed)[:100], "truly_diverged": sorted(truth)[:100]}
    if true_ids is None:
        return inconclusive(name, "the harness recorded no truth for this run: what truly "
                            f"diverged is unknown ({len(changed)} rows rewritten by the "
                            "consumer cannot be judged)", example)
    if not truth:
        return inconclusive(name, "nothing truly diverged: the fault created no divergence, "
                            f"so the automatic repair was not tested ({len(changed)} rows "
                            "rewritten by the consumer)", example)
    missed = sorted(truth - changed)
    if missed:
        return CheckResult(name, False,
                           f"the consumer repaired {len(truth) - len(missed)} of {len(truth)} "
                           f"truly divergent ids by itself; never repaired: {sample(missed)}",
                           example)
    if not converged:
        return CheckResult(name, False,
                           f"the consumer rewrote all {len(truth)} truly divergent rows by "
                           "itself but the replica did not converge", example)
    beyond = len(changed - truth)
    return CheckResult(name, True,
                       f"the consumer found and rewrote all {len(truth)} truly divergent rows "
                       f"by itself ({sample(sorted(truth), 3)})"
                       + (f", and {beyond} rows in flight at its checks" if beyond else "")
                       + "; converged", example)
