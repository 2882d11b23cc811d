"""The Python API: run scenarios and write their reports.

    from harness.session import run_scenarios
    result = run_scenarios(["steady_state"], RunSettings(seed=7))
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from harness.brokers.kept import KeptBroker
from harness.errors import ConfigError
from harness.reporting import write_junit, write_run_json, write_summary
from harness.reporting.html import write_html
from harness.results import RunResult
from harness.runner import ScenarioRun
from harness.runtime.registry import RuntimeChoice, choose_runtime
from harness.scenario import Scenario
from harness.settings import RunSettings


def load_catalogue() -> dict[str, Scenario]:
    from scenarios import all_scenarios

    return all_scenarios()


def select_scenarios(names: Sequence[str]) -> list[Scenario]:
    catalogue = load_catalogue()
    if not names:
        return list(catalogue.values())
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ConfigError("scenario", f"unknown scenario(s) {', '.join(unknown)}",
                          f"run `harness list`; known: {', '.join(catalogue)}")
    _reject_repeats(names)
    return [catalogue[n] for n in names]


def _reject_repeats(names: Sequence[str]) -> None:
    # Both would write the same <run_id>/<scenario>/ folder; one run judges each once.
    twice = sorted(name for name, count in Counter(names).items() if count > 1)
    if twice:
        raise ConfigError("scenario", f"named more than once: {', '.join(twice)}",
                          "name each scenario once; to repeat one, run it again with "
                          "another --seed")


def prepare_report_dir(path: Path) -> Path:
    """Create the report directory and make sure files can be written in it, before
    anything is started; a ConfigError names the directory and the reason otherwise."""
    path = path.resolve()
    fix = "give a directory you can write to (default: reports)"
    if path.exists() and not path.is_dir():
        raise ConfigError("--report-dir", f"{path} is a file, not a directory", fix)
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A uniquely named probe, gone when closed: concurrent runs may share the root.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError("--report-dir", f"cannot write reports in {path}: "
                          f"{exc.strerror or exc}", fix) from exc
    return path


def new_run_id(seed: int) -> str:
    return time.strftime("%Y%m%d-%H%M%S") + f"-s{seed}"


def claim_run_id(root: Path, run_id: str) -> str:
    """`run_id`, or `run_id-2`, `-3`, ... whichever folder under `root` this run creates
    first: two runs started in the same second with the same seed must not write into one
    folder (the later would overwrite the earlier's reports)."""
    for attempt in range(1, 1000):
        candidate = run_id if attempt == 1 else f"{run_id}-{attempt}"
        try:
            (root / candidate).mkdir()
        except FileExistsError:
            continue
        return candidate
    raise ConfigError("--report-dir", f"{root} already holds 999 runs named {run_id}*",
                      "give another --report-dir or clean up old reports")


def write_reports(result: RunResult, report_dir: Path) -> Path:
    path = write_run_json(result, report_dir)
    data = result.to_dict()
    write_junit(data, report_dir)
    write_summary(data, report_dir)
    # After the files CI and people read first; each scenario's chart is drawn once.
    write_html(data, report_dir)
    return path


def _bind(emit: Callable[[str, str], None], name: str) -> Callable[[str], None]:
    return lambda message: emit(name, message)


def run_scenarios(
    scenarios: Sequence[Scenario],
    settings: RunSettings,
    report_dir: Path | None = None,
    progress: Callable[[str, str], None] | None = None,
    files: Mapping[str, str] | None = None,
    runtime: RuntimeChoice | None = None,
    kept_broker: KeptBroker | None = None,
) -> tuple[RunResult, Path]:
    """Run scenarios one after another; returns the result and the report directory.
    `files`: the name of each scenario read from a file -> that file, for run.json.
    `runtime`: the runtime already chosen (else settings.runtime is resolved here);
    `kept_broker`: a running broker each scenario borrows a namespace of instead of
    starting one (harness/brokers/kept.py).

    Reports are rewritten after every scenario, so an interrupted run still leaves a
    run.json with what finished (and `interrupted: true`).
    """
    _reject_repeats([s.name for s in scenarios])
    emit = progress or (lambda _name, _msg: None)
    choice = runtime or choose_runtime(settings.runtime, lambda msg: emit("images", msg))
    if settings.runtime != choice.name:
        emit("runtime", f"{choice.name} ({choice.reason})")
    settings = replace(settings, runtime=choice.name)
    run_id = new_run_id(settings.seed)
    if report_dir is None:
        run_id = claim_run_id(prepare_report_dir(settings.report_root), run_id)
    # Absolute once, here: every component runs in its own working directory, so a
    # relative path (the default "reports") would point somewhere else for each of them.
    report_dir = prepare_report_dir(report_dir or settings.report_root / run_id)
    result = RunResult(run_id, settings.seed, settings.broker, settings.runtime,
                       settings.variant, started_at=time.time(), db=settings.db)
    try:
        for scenario in scenarios:
            run = ScenarioRun(scenario, settings, report_dir, _bind(emit, scenario.name),
                              choice, run_id, kept_broker)
            scenario_result = run.execute()
            scenario_result.scenario_file = (files or {}).get(scenario.name, "")
            result.scenarios.append(scenario_result)
            emit(scenario.name, f"@verdict {scenario_result.verdict}")
            write_reports(result, report_dir)
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    finally:
        result.finished_at = time.time()
        write_reports(result, report_dir)
    return result, report_dir
