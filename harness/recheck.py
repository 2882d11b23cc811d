"""`harness check`: judge a stored run again from its files alone.

Each scenario folder holds what its checks were judged from (`Collected`, saved by the
runner before judging) and its history.jsonl. Re-checking loads them and calls the same
pure `evaluate()` as `harness run`, so a run gives the same verdicts and check messages
offline, and a change to a checker can be tried on old runs without starting anything.

A scenario that stopped before its checks (no collected data) is not re-judged: its error
is repeated, from the steady-state record of its history when the hypothesis failed, or
from run.json. Anything unreadable is a ConfigError naming the file.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.collected import MANIFEST, Collected
from harness.errors import ConfigError
from harness.evaluation import evaluate
from harness.metrics import replication_metrics
from harness.reporting import check_line, load_run_json, scenario_line
from harness.results import ScenarioResult
from harness.steady_state import not_reached

HISTORY = "history.jsonl"
_WHAT = "give reports/<run_id> (a run's folder) or reports/<run_id>/<scenario>"


@dataclass(frozen=True)
class Rechecked:
    result: ScenarioResult  # as judged now
    stored: dict[str, Any] | None  # the scenario's entry in run.json, when there is one
    rejudged: bool  # False: the run stopped before its checks; its error is repeated
    traceback: str = ""  # when judging raised: a harness bug, shown in full


@dataclass(frozen=True)
class RecheckedRun:
    path: Path
    run: dict[str, Any] | None  # run.json, when there is one
    scenarios: list[Rechecked]


def recheck(path: Path) -> RecheckedRun:
    """Re-judge a run's folder (every scenario run.json lists) or one scenario folder."""
    if not path.exists():
        raise ConfigError(str(path), "does not exist", _WHAT)
    if path.is_file():
        if path.name != "run.json":
            raise ConfigError(str(path), "is a file, not a run's folder", _WHAT)
        path = path.parent
    if (path / "run.json").exists():
        run = load_run_json(path / "run.json")
        if not run["scenarios"]:
            raise ConfigError(str(path / "run.json"), "lists no scenario",
                              "re-run the scenarios; an interrupted run may have none")
        return RecheckedRun(path, run, [recheck_scenario(path / s["name"], s)
                                        for s in run["scenarios"]])
    if (path / HISTORY).exists():
        run_json = path.parent / "run.json"
        parent = load_run_json(run_json) if run_json.exists() else None
        stored = next((s for s in parent["scenarios"] if s["name"] == path.name),
                      None) if parent else None
        return RecheckedRun(path, parent, [recheck_scenario(path, stored)])
    raise ConfigError(str(path), f"is not a run: it holds neither run.json (a run's folder) "
                      f"nor {HISTORY} (a scenario's folder)", _WHAT)


def recheck_scenario(folder: Path, stored: dict[str, Any] | None) -> Rechecked:
    history = _read_history(folder)
    header = next((r for r in history if r.get("kind") == "scenario"), {})
    name = stored["name"] if stored else str(header.get("name", folder.name))
    seed = stored.get("seed", header.get("seed", 0)) if stored else header.get("seed", 0)
    result = ScenarioResult(name, int(seed), report_dir=str(folder),
                            duration_s=float(stored["duration_s"]) if stored else 0.0)
    if (folder / MANIFEST).exists():
        collected = Collected.load(folder)
        try:
            evaluation = evaluate(collected)
        except Exception as exc:  # as in the runner: this scenario errors, the rest goes on
            result.error, result.error_kind = f"{type(exc).__name__}: {exc}", "internal"
            return Rechecked(result, stored, True, "".join(traceback.format_exception(exc)))
        result.checks, result.faults = evaluation.checks, evaluation.faults
        # Metrics of the set-up and the load (setup_s, writes, ...) were not collected:
        # the run's own figures stand; those judged from the collected data are recomputed.
        result.metrics = {**(stored or {}).get("metrics", {}),
                          **replication_metrics(collected.deliveries), **evaluation.metrics}
        return Rechecked(result, stored, True)
    steady = [r for r in history if r.get("kind") == "steady_state"]
    if steady and not steady[-1].get("ok"):
        result.error = "SteadyStateNotReached: " + not_reached(
            str(steady[-1].get("before", "")), str(steady[-1].get("details", "")))
        result.error_kind = "setup"
    elif stored and stored["error"]:
        result.error, result.error_kind = stored["error"], str(stored.get("error_kind", ""))
    else:
        raise ConfigError(str(folder / MANIFEST), "is missing, and the run recorded no error "
                          "that would explain it", "the stored run is incomplete (was it "
                          "interrupted?); re-run the scenario")
    return Rechecked(result, stored, False)


def _read_history(folder: Path) -> list[dict[str, Any]]:
    path = folder / HISTORY
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "is missing", "the stored run is incomplete; re-run "
                          "the scenario") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot be read ({exc})",
                          "restore the file or re-run the scenario") from exc
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{path}:{number}", f"is not a JSON record ({exc})",
                              "restore the file or re-run the scenario") from exc
        if not isinstance(record, dict):
            raise ConfigError(f"{path}:{number}", "is not a JSON object",
                              "restore the file or re-run the scenario")
        records.append(record)
    return records


def render(checked: RecheckedRun) -> str:
    """The verdict lines `harness run` prints, each scenario's checks, and where a verdict
    or a check message differs from what the run stored."""
    run = checked.run
    lines = [f"harness check: re-judged {checked.path} from its stored files"
             + (f" (run {run['run_id']}, seed {run['seed']}, variant {run['variant']})"
                if run else ""), ""]
    differ = 0
    for item in checked.scenarios:
        data = item.result.to_dict()
        lines.append(scenario_line(data)
                     + ("" if item.rejudged else "  [not re-judged: the run stopped "
                        "before its checks]"))
        lines += [f"    {check_line(c)}" for c in data["checks"]]
        notes = _differences(item) if item.stored else []
        differ += bool(notes)
        lines += [f"    differs from the run: {note}" for note in notes]
    verdicts = [s.result.verdict for s in checked.scenarios]
    compared = all(item.stored for item in checked.scenarios)
    lines += ["", f"{verdicts.count('pass')} of {len(verdicts)} passed"
              + (f", {verdicts.count('inconclusive')} inconclusive"
                 if "inconclusive" in verdicts else "")
              + (f"; {differ} scenario(s) judged differently from the run" if differ
                 else "; same verdicts and check messages as the run" if compared else "")]
    return "\n".join(lines) + "\n"


def _differences(item: Rechecked) -> list[str]:
    assert item.stored is not None
    notes = []
    if item.stored["verdict"] != item.result.verdict:
        notes.append(f"verdict {item.stored['verdict']} then, {item.result.verdict} now")
    then = {c["name"]: (c["ok"], c["details"]) for c in item.stored["checks"]}
    now = {c.name: (c.ok, c.details) for c in item.result.checks}
    for name in sorted(then.keys() | now.keys()):
        if then.get(name) != now.get(name):
            notes.append(f"check {name}: {_said(then.get(name))} then, "
                         f"{_said(now.get(name))} now")
    return notes


def _said(check: tuple[bool, str] | None) -> str:
    if check is None:
        return "absent"
    return f"{'ok' if check[0] else 'not ok'} ({check[1]})"
