"""run.json: the data every other view of a run is rendered from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.results import RunResult


def write_run_json(result: RunResult, report_dir: Path) -> Path:
    path = report_dir / "run.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    tmp.replace(path)  # a reader never sees a half-written file
    return path


def load_run_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data
