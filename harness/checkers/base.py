"""What every checker returns. Checkers are pure functions; the runner decides verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What a check concluded. "inconclusive": the run could not show what the check needs (e.g.
# the fault that should have made a divergence made none), which is not a finding about
# the system; "unknown": the checker itself failed (it raised), so nothing is known.
STATUSES = ("pass", "fail", "inconclusive", "unknown")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    details: str
    counterexample: dict[str, Any] = field(default_factory=dict)
    status: str = ""  # one of STATUSES; "" means derived from ok

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", "pass" if self.ok else "fail")
        if self.status not in STATUSES:
            raise ValueError(f"unknown check status {self.status!r}")
        if self.ok != (self.status == "pass"):
            raise ValueError(f"check {self.name}: ok={self.ok} contradicts {self.status}")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "status": self.status,
                "details": self.details, "counterexample": self.counterexample}


def inconclusive(name: str, details: str, counterexample: dict[str, Any] | None = None
                 ) -> CheckResult:
    return CheckResult(name, False, details, counterexample or {}, "inconclusive")


def unknown(name: str, details: str) -> CheckResult:
    return CheckResult(name, False, details, {}, "unknown")


def sample(items: list[Any], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
