"""Convergence: the replica equals the source, field for field, id for id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.checkers.base import CheckResult, sample
from harness.contract.dataset import REPLICATED_FIELDS


def compare_datasets(source: Sequence[dict[str, Any]], replica: Sequence[dict[str, Any]],
                     fields: Sequence[str] = REPLICATED_FIELDS,
                     name: str = "convergence") -> CheckResult:
    src = {int(r["id"]): r for r in source}
    rep = {int(r["id"]): r for r in replica}
    missing = sorted(src.keys() - rep.keys())
    extra = sorted(rep.keys() - src.keys())  # e.g. a delete that never arrived
    differing: list[str] = []
    diffs: dict[str, dict[str, Any]] = {}
    for pid in sorted(src.keys() & rep.keys()):
        fields_off = {f: {"source": src[pid][f], "replica": rep[pid][f]}
                      for f in fields if src[pid][f] != rep[pid][f]}
        if fields_off:
            diffs[str(pid)] = fields_off
            shown = ", ".join(f"{f} {v['replica']!r} != {v['source']!r}"
                              for f, v in fields_off.items())
            differing.append(f"id {pid}: {shown}")
    if not (missing or extra or differing):
        return CheckResult(name, True, f"replica equals source: {len(src)} products")
    parts = []
    if missing:
        parts.append(f"{len(missing)} ids missing from the replica ({sample(missing)})")
    if extra:
        parts.append(f"{len(extra)} ids in the replica but deleted or absent at the source "
                     f"({sample(extra)})")
    if differing:
        parts.append(f"{len(differing)} rows differ ({sample(differing, 3)})")
    return CheckResult(
        name, False,
        f"replica diverges from source ({len(src)} source rows): " + "; ".join(parts),
        {"missing": missing[:100], "extra": extra[:100],
         "differing": dict(list(diffs.items())[:100])})
