"""The real oracle: each example run as a scenario of its own against the real system
under test, started for it and stopped after, and judged by the usual checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.explore.schedule import Example
from harness.explore.search import RUN_CHECKS, Outcome
from harness.session import run_scenarios
from harness.settings import RunSettings


class ScenarioOracle:
    """Runs example k in `folder`/run-<k>/ with `settings` (seed, broker, runtime,
    variant, database). `log` gets the runner's own progress lines."""

    def __init__(self, settings: RunSettings, folder: Path,
                 log: Callable[[str], None] = lambda _line: None) -> None:
        self.settings = settings
        self.folder = folder
        self.log = log
        self.count = 0

    def _relay(self, _scenario: str, message: str) -> None:
        if not message.startswith("@"):  # "@verdict ...": a marker for the run's printer
            self.log(message)

    def __call__(self, example: Example) -> Outcome:
        self.count += 1
        result, _report_dir = run_scenarios(
            [example.scenario()], self.settings, report_dir=self.folder / f"run-{self.count:03d}",
            progress=self._relay)
        scenario = result.scenarios[0]
        failed = tuple(c.name for c in scenario.checks
                       if c.status == "fail" and c.name not in RUN_CHECKS)
        details = next((c.details for c in scenario.checks if c.name in failed),
                       scenario.error or scenario.first_failure())
        return Outcome(failed, scenario.verdict, details, scenario.report_dir)
