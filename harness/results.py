"""Results of a run, shaped as they are written to run.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.checkers.base import CheckResult


@dataclass
class ScenarioResult:
    name: str
    seed: int
    checks: list[CheckResult] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    error: str = ""  # set when the scenario could not run to its checks
    report_dir: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        """error: it could not run to a judgement (or a checker crashed); fail: a check
        found a problem; inconclusive: nothing failed but something could not be shown;
        pass: every check passed."""
        statuses = {c.status for c in self.checks}
        if self.error or "unknown" in statuses:
            return "error"
        if "fail" in statuses:
            return "fail"
        if "inconclusive" in statuses:
            return "inconclusive"
        return "pass" if self.passed else "fail"

    def first_failure(self) -> str:
        if self.error:
            return self.error.splitlines()[0]
        failed = [c for c in self.checks if not c.ok]
        return f"{failed[0].name}: {failed[0].details}" if failed else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "seed": self.seed,
            "duration_s": round(self.duration_s, 3),
            "error": self.error,
            "checks": [c.to_dict() for c in self.checks],
            "metrics": self.metrics,
            "faults": self.faults,
            "report_dir": self.report_dir,
        }


@dataclass
class RunResult:
    run_id: str
    seed: int
    broker: str
    runtime: str
    variant: str
    started_at: float
    scenarios: list[ScenarioResult] = field(default_factory=list)
    finished_at: float = 0.0
    interrupted: bool = False

    @property
    def passed(self) -> bool:
        return bool(self.scenarios) and all(s.passed for s in self.scenarios) \
            and not self.interrupted

    def replay_command(self) -> str:
        """Re-runs what failed (everything, if nothing did) with the same seed."""
        failed = [s.name for s in self.scenarios if not s.passed]
        names = failed or [s.name for s in self.scenarios]
        return (f"harness run {' '.join(names)} --seed {self.seed} --broker {self.broker} "
                f"--runtime {self.runtime} --variant {self.variant}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seed": self.seed,
            "broker": self.broker,
            "runtime": self.runtime,
            "variant": self.variant,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "interrupted": self.interrupted,
            "verdict": "pass" if self.passed else "fail",
            "replay": self.replay_command(),
            "scenarios": [s.to_dict() for s in self.scenarios],
        }
