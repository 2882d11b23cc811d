"""Results of a run, shaped as they are written to run.json, and the exit code they give."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.checkers.base import CheckResult

# Exit codes of `harness run` and `harness check` (documented in harness/cli.py).
EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3
EXIT_INTERRUPTED = 130

# Why a scenario could not run to a judgement (ScenarioResult.error_kind):
# "setup": the system could not be started or never reached its steady state, so nothing
#   about it was judged; "run": the harness could not carry out the scenario (a fault that
#   would not inject or heal, a service that stopped answering, a wait that timed out);
#   "internal": an unexpected exception, i.e. a bug in the harness (traceback in error.txt).
ERROR_KINDS = ("setup", "run", "internal")


@dataclass
class ScenarioResult:
    name: str
    seed: int
    checks: list[CheckResult] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    error: str = ""  # "<ExceptionType>: message", set when it could not run to its checks
    error_kind: str = ""  # one of ERROR_KINDS when error is set
    report_dir: str = ""
    # Why it cannot run on this run's broker (its faults need a capability the broker's
    # adapter lacks): reported, never counted as a pass.
    not_applicable: str = ""
    # The scenario file it was read from (`harness run --scenario-file`); "" for one from
    # the catalogue.
    scenario_file: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def verdict(self) -> str:
        """error: it could not run to a judgement (or a checker crashed); fail: a check
        found a problem; inconclusive: nothing failed but something could not be shown;
        pass: every check passed."""
        if self.not_applicable:
            return "not_applicable"
        statuses = {c.status for c in self.checks}
        if self.error or "unknown" in statuses:
            return "error"
        if "fail" in statuses:
            return "fail"
        if "inconclusive" in statuses:
            return "inconclusive"
        return "pass" if self.passed else "fail"

    def first_failure(self) -> str:
        if self.not_applicable:
            return f"not applicable: {self.not_applicable}"
        if self.error:
            return self.error.splitlines()[0]
        # Unknown (a checker raised) first: it is why the verdict is "error".
        for status in ("unknown", "fail", "inconclusive"):
            for check in self.checks:
                if check.status == status:
                    return f"{check.name}: {check.details}"
        return ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "seed": self.seed,
            "duration_s": round(self.duration_s, 3),
            "error": self.error,
            "error_kind": self.error_kind,
            "not_applicable": self.not_applicable,
            "checks": [c.to_dict() for c in self.checks],
            "metrics": self.metrics,
            "faults": self.faults,
            "report_dir": self.report_dir,
            "scenario_file": self.scenario_file,
        }


def exit_code(scenarios: Sequence[ScenarioResult], interrupted: bool = False) -> int:
    """What a run (or a re-check) of these scenarios exits with.

    130 interrupted; 2 when every scenario errored while setting up (the environment is the
    problem, not the system under test) or none can run on this broker; 1 when a scenario
    failed or errored (also when none ran); 3 when nothing failed but something could not
    be shown (inconclusive); 0 when every scenario that can run on this broker passed.
    Scenarios not applicable to the broker count neither way.
    """
    if interrupted:
        return EXIT_INTERRUPTED
    applicable = [s for s in scenarios if not s.not_applicable]
    if scenarios and not applicable:
        return EXIT_USAGE  # nothing asked for can run on this broker
    scenarios = applicable
    if scenarios and all(s.error and s.error_kind == "setup" for s in scenarios):
        return EXIT_USAGE
    verdicts = {s.verdict for s in scenarios}
    if not scenarios or verdicts & {"fail", "error"}:
        return EXIT_FAIL
    if "inconclusive" in verdicts:
        return EXIT_INCONCLUSIVE
    return EXIT_PASS


_RUN_VERDICTS = {EXIT_PASS: "pass", EXIT_INCONCLUSIVE: "inconclusive", EXIT_USAGE: "error"}


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
    db: str = "sqlite"  # the reference services' database (RunSettings.db)

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_PASS

    @property
    def exit_code(self) -> int:
        return exit_code(self.scenarios, self.interrupted)

    @property
    def verdict(self) -> str:
        """pass, inconclusive, error (nothing could be set up) or fail (anything else,
        an interrupted run included)."""
        return _RUN_VERDICTS.get(self.exit_code, "fail")

    def replay_command(self) -> str:
        """Re-runs what did not pass (everything, if all did) with the same seed."""
        failed = [s for s in self.scenarios if not s.passed and not s.not_applicable]
        # One read from a file is replayed from that file: its name is not in the catalogue,
        # or is a catalogue scenario's that the file may have changed.
        names = [f"--scenario-file {shlex.quote(s.scenario_file)}" if s.scenario_file
                 else s.name for s in failed or self.scenarios]
        return (f"harness run {' '.join(names)} --seed {self.seed} --broker {self.broker} "
                f"--runtime {self.runtime} --variant {self.variant}"
                + (f" --db {self.db}" if self.db != "sqlite" else ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seed": self.seed,
            "broker": self.broker,
            "runtime": self.runtime,
            "db": self.db,
            "variant": self.variant,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "interrupted": self.interrupted,
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "replay": self.replay_command(),
            "scenarios": [s.to_dict() for s in self.scenarios],
        }
