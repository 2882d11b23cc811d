"""Checks about the run itself: it did the work it planned, and its faults really happened."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.checkers.base import CheckResult

# Share of the planned writes that must succeed unless a scenario declares otherwise: a run
# that wrote a tenth of its load exercised a tenth of what it claims to have tested.
DEFAULT_MIN_WRITE_SHARE = 0.9


def progress(ops: Sequence[dict[str, Any]], planned: int | None = None,
             min_share: float = DEFAULT_MIN_WRITE_SHARE) -> CheckResult:
    """At least `min_share` of the `planned` writes (the workload's max_ops, not the ones
    the driver got round to attempting) succeeded, and at least one did. Without a plan
    (a run stored before plans were recorded) the attempted writes stand in for it."""
    ok = sum(1 for op in ops if op.get("ok"))
    total = planned if planned is not None else len(ops)
    required = max(1, math.ceil(min_share * total))
    share = f"{ok} of {total} planned writes succeeded ({len(ops)} attempted)" \
        if planned is not None else f"{ok} of {len(ops)} writes succeeded"
    if ok == 0:
        return CheckResult("progress", False, f"no successful writes: {share}; "
                           "the run proves nothing")
    if ok < required:
        return CheckResult("progress", False,
                           f"too little load: {share}, the scenario requires "
                           f"{min_share:.0%} ({required})",
                           {"succeeded": ok, "attempted": len(ops), "planned": total,
                            "required": required})
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
