"""The human summary of a run, rendered from run.json data."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def scenario_line(scenario: dict[str, Any]) -> str:
    verdict = scenario["verdict"].upper()
    m = scenario.get("metrics", {})
    if scenario["verdict"] == "pass":
        lag = m.get("lag_ms", {})
        detail = (f"{m.get('events_processed', 0)} events, {m.get('throughput_eps', 0)} ev/s, "
                  f"lag p50 {lag.get('p50', 0)}ms p99 {lag.get('p99', 0)}ms")
    elif scenario["verdict"] == "error":
        detail = scenario["error"].splitlines()[0]
    else:
        failed = [c for c in scenario["checks"] if not c["ok"]]
        detail = "; ".join(f"{c['name']}: {c['details']}" for c in failed)
    return f"{verdict:5} {scenario['name']:<22} {scenario['duration_s']:6.1f}s  {detail}"


def render_summary(run: dict[str, Any]) -> str:
    lines = [
        f"run {run['run_id']}  seed={run['seed']}  broker={run['broker']}  "
        f"runtime={run['runtime']}  variant={run['variant']}",
        "",
    ]
    lines += [scenario_line(s) for s in run["scenarios"]]
    passed = sum(1 for s in run["scenarios"] if s["verdict"] == "pass")
    lines += ["", f"{passed} of {len(run['scenarios'])} scenarios passed"
              + (" (interrupted)" if run.get("interrupted") else ""),
              f"replay: {run['replay']}"]
    for scenario in run["scenarios"]:
        for check in scenario["checks"]:
            if not check["ok"]:
                lines.append(f"  {scenario['name']}/{check['name']}: {check['details']}")
    return "\n".join(lines) + "\n"


def write_summary(run: dict[str, Any], report_dir: Path) -> Path:
    path = report_dir / "summary.txt"
    path.write_text(render_summary(run))
    return path
