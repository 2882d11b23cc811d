"""run.json: the data every other view of a run is rendered from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.results import RunResult

# What the summary, JUnit and `harness check` read from a stored run.json.
_RUN_KEYS: dict[str, type | tuple[type, ...]] = {
    "run_id": str, "seed": int, "broker": str, "runtime": str, "variant": str,
    "replay": str, "scenarios": list}
_SCENARIO_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str, "verdict": str, "duration_s": (int, float), "error": str, "checks": list}
_CHECK_KEYS: dict[str, type | tuple[type, ...]] = {"name": str, "ok": bool, "details": str}
_FIX = "point at a run.json written by `harness run`, or re-run the scenarios"


def write_run_json(result: RunResult, report_dir: Path) -> Path:
    path = report_dir / "run.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    tmp.replace(path)  # a reader never sees a half-written file
    return path


def load_run_json(path: Path) -> dict[str, Any]:
    """A stored run.json, checked for what its readers use; anything else (unreadable,
    not JSON, a missing or mistyped key) is a ConfigError naming the file and the key."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "does not exist",
                          "give a report directory (reports/<run_id>) or its run.json") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot be read ({exc})", _FIX) from exc
    except ValueError as exc:
        raise ConfigError(str(path), f"is not valid JSON ({exc})", _FIX) from exc
    _require(data, _RUN_KEYS, path, "")
    for index, scenario in enumerate(data["scenarios"]):
        where = f"scenarios[{index}]."
        _require(scenario, _SCENARIO_KEYS, path, where)
        for number, check in enumerate(scenario["checks"]):
            _require(check, _CHECK_KEYS, path, f"{where}checks[{number}].")
    return dict(data)


def _require(value: Any, keys: dict[str, type | tuple[type, ...]], path: Path,
             where: str) -> None:
    if not isinstance(value, dict):
        raise ConfigError(str(path), f"{where.rstrip('.') or 'the top level'} is not an "
                          "object", _FIX)
    for key, kind in keys.items():
        if key not in value:
            raise ConfigError(str(path), f"{where}{key} is missing", _FIX)
        # bool is an int in Python, but never a valid seed or duration here.
        if not isinstance(value[key], kind) or (
                isinstance(value[key], bool) and kind is not bool):
            raise ConfigError(str(path), f"{where}{key} has the wrong type "
                              f"({type(value[key]).__name__})", _FIX)
