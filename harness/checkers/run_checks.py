"""Checks about the run itself: it did work, and its faults really happened."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.checkers.base import CheckResult


def progress(ops: Sequence[dict[str, Any]]) -> CheckResult:
    ok = sum(1 for op in ops if op.get("ok"))
    if ok == 0:
        return CheckResult("progress", False,
                           f"no successful writes out of {len(ops)} attempted: "
                           "the run proves nothing")
    return CheckResult("progress", True, f"{ok} of {len(ops)} writes succeeded")


def fault_was_active(faults: Sequence[dict[str, Any]], expected: int) -> CheckResult:
    """Each injected fault must carry evidence that it affected its target."""
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
        reasons = "; ".join(
            f"{f['fault']}: {f['window_s']}s window, max lag {f['max_lag_in_window_s']}s "
            f"over {f['events_in_window']} events" for f in unfelt[:3])
        return CheckResult("fault_was_active", False,
                           f"{len(unfelt)} faults did not slow replication ({reasons})")
    evidence = "; ".join(str(f.get("evidence")) for f in injected[:3])
    return CheckResult("fault_was_active", True,
                       f"{len(injected)} faults injected and observed ({evidence})")
