"""Checks about the run itself: it did the work it planned, and its faults really happened."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.checkers.base import CheckResult
from harness.metrics import load_rates

# Share of the planned writes that must succeed, and of the offered write rate that must be
# achieved, unless a scenario declares otherwise: a run that wrote a tenth of its load, or
# wrote it at a tenth of its rate, exercised a tenth of what it claims to have tested.
DEFAULT_MIN_WRITE_SHARE = 0.9


# The achieved write rate a scenario may require at most, as a share of the offered one.
# On these 2-core machines a busy moment can leave the last answers of a 10 s load a
# second or more behind schedule, with every write done: 0.8 still fails a run that
# tested a clearly lighter load than it claims, without failing a healthy one for that.
MAX_RATE_SHARE = 0.8


def progress(ops: Sequence[dict[str, Any]], planned: int | None = None,
             min_share: float = DEFAULT_MIN_WRITE_SHARE) -> CheckResult:
    """At least `min_share` of the `planned` writes (the workload's max_ops, not the ones
    the driver got round to attempting) succeeded, at least one did, and the publisher
    acknowledged writes at no less than `min_share` (at most MAX_RATE_SHARE) of the
    offered rate (a run that wrote
    everything, but late, tested a lighter load than it claims). Without a plan (a run
    stored before plans were recorded) the attempted writes stand in for it; without the
    writes' schedule (stored before the driver recorded one) the rate is not judged."""
    ok = sum(1 for op in ops if op.get("ok"))
    total = planned if planned is not None else len(ops)
    required = max(1, math.ceil(min_share * total))
    rates = load_rates(ops)
    share = f"{ok} of {total} planned writes succeeded ({len(ops)} attempted)" \
        if planned is not None else f"{ok} of {len(ops)} writes succeeded"
    if rates is not None:
        share += (f"; the workload's records show {rates.achieved_per_s:.1f} writes/s "
                  f"acknowledged of {rates.offered_per_s:g} offered "
                  f"({rates.share:.0%}, over {rates.window_s:.1f} s)")
        if rates.behind_schedule:
            share += (f", {rates.behind_schedule} writes sent late because the cap on "
                      f"writes in flight was full (up to {rates.max_send_delay_ms:.0f} ms)")
    if ok == 0:
        return CheckResult("progress", False, f"no successful writes: {share}; "
                           "the run proves nothing")
    rate_share = min(min_share, MAX_RATE_SHARE)
    slow = rates is not None and rates.achieved_per_s < rate_share * rates.offered_per_s
    requirement = (f", the scenario requires {min_share:.0%} ({required})" if rates is None
                   else f"; the scenario requires {min_share:.0%} of the planned writes "
                        f"({required}) and {rate_share:.0%} of the offered rate")
    if ok < required or slow:
        return CheckResult("progress", False,
                           f"too little load: {share}{requirement}",
                           {"succeeded": ok, "attempted": len(ops), "planned": total,
                            "required": required,
                            **({"offered_rate_per_s": round(rates.offered_per_s, 2),
                                "achieved_rate_per_s": round(rates.achieved_per_s, 2)}
                               if rates is not None else {})})
    return CheckResult("progress", True, share)


def fault_was_active(faults: Sequence[dict[str, Any]], expected: int) -> CheckResult:
    """Each injected fault must carry evidence that it affected its target: its own
    evidence (`verified`), and, where its record was assessed against replication
    (harness/checkers/recovery.py), an observed impact (`impact_observed`, explained in
    `impact`)."""
    injected = [f for f in faults if f.get("phase") == "inject"]
    unverified = [f for f in injected if not f.get("verified")]
    unfelt = [f for f in injected if f.get("verified") and not f.get("impact_observed", True)]
    if len(injected) < expected:
        return CheckResult("fault_was_active", False,
                           f"only {len(injected)} of {expected} scheduled faults were injected")
    if unverified:
        reasons = "; ".join(f"{f['fault']}: {f.get('evidence', 'no evidence')}"
                            for f in unverified[:3])
        return CheckResult("fault_was_active", False,
                           f"{len(unverified)} faults had no observable effect ({reasons})")
    if unfelt:
        reasons = "; ".join(f"{f['fault']}: {f.get('impact', 'no impact recorded')}"
                            for f in unfelt[:3])
        return CheckResult("fault_was_active", False,
                           f"{len(unfelt)} faults were not felt ({reasons})",
                           {"unfelt": [f["fault"] for f in unfelt]})
    evidence = "; ".join(str(f.get("evidence")) for f in injected[:3])
    # Said out loud: for these, only their own evidence shows they happened.
    inseparable = [f["fault"] for f in injected if f.get("impact_inseparable")]
    return CheckResult("fault_was_active", True,
                       f"{len(injected)} faults injected and observed ({evidence})"
                       + (f"; {len(inseparable)} began while replication was still "
                          "recovering from an earlier fault and are judged by their own "
                          f"evidence only ({', '.join(inseparable[:3])})"
                          if inseparable else ""))
