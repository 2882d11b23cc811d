"""The real oracle: each example run as a scenario of its own against the real system
under test, judged by the usual checks. Its services, fault proxy and databases are
started for it and stopped after; the broker is either its own too or one kept across the
search, of which it borrows a namespace (harness/brokers/kept.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.brokers.kept import KeptBroker
from harness.explore.schedule import Example
from harness.explore.search import RUN_CHECKS, Outcome
from harness.runtime.registry import RuntimeChoice
from harness.session import run_scenarios
from harness.settings import RunSettings


class ScenarioOracle:
    """Runs example k in `folder`/run-<k>/ with `settings` (seed, broker, variant,
    database) on `runtime`, borrowing `kept_broker` when given. `log` gets the runner's
    own progress lines."""

    def __init__(self, settings: RunSettings, folder: Path, runtime: RuntimeChoice,
                 kept_broker: KeptBroker | None = None,
                 log: Callable[[str], None] = lambda _line: None) -> None:
        self.settings = settings
        self.folder = folder
        self.runtime = runtime
        self.kept_broker = kept_broker
        self.log = log
        self.count = 0

    def _relay(self, _scenario: str, message: str) -> None:
        if not message.startswith("@"):  # "@verdict ...": a marker for the run's printer
            self.log(message)

    def __call__(self, example: Example) -> Outcome:
        return self._run(example, self.kept_broker)

    def replayed(self, example: Example) -> Outcome:
        """The example as `harness run --scenario-file` replays it: on a broker of its
        own, not a namespace of the kept one."""
        return self._run(example, None)

    def _run(self, example: Example, kept_broker: KeptBroker | None) -> Outcome:
        self.count += 1
        result, _report_dir = run_scenarios(
            [example.scenario()], self.settings, report_dir=self.folder / f"run-{self.count:03d}",
            progress=self._relay, runtime=self.runtime, kept_broker=kept_broker)
        scenario = result.scenarios[0]
        failed = tuple(c.name for c in scenario.checks
                       if c.status == "fail" and c.name not in RUN_CHECKS)
        details = next((c.details for c in scenario.checks if c.name in failed),
                       scenario.error or scenario.first_failure())
        run_checks = tuple(c.name for c in scenario.checks
                           if c.status == "fail" and c.name in RUN_CHECKS)
        return Outcome(failed, scenario.verdict, details, scenario.report_dir, run_checks)
