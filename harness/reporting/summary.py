"""The human summary of a run, rendered from run.json data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Wide enough for NOT_APPLICABLE, so the scenario names line up whatever the verdicts.
_VERDICT_WIDTH = 14


def _status(check: dict[str, Any]) -> str:
    # run.json files written before checks carried a status only have "ok".
    return str(check.get("status") or ("pass" if check["ok"] else "fail"))


def check_line(check: dict[str, Any]) -> str:
    """`[ok] name: details`; a check that did not pass shows its status in capitals."""
    tag = "ok" if check["ok"] else _status(check).upper()
    return f"[{tag}] {check['name']}: {check['details']}"


def scenario_line(scenario: dict[str, Any]) -> str:
    verdict = scenario["verdict"]
    m = scenario.get("metrics", {})
    if verdict == "pass":
        lag = m.get("lag_ms", {})
        detail = (f"{m.get('events_processed', 0)} events, {m.get('throughput_eps', 0)} ev/s, "
                  f"lag p50 {lag.get('p50', 0)}ms p99 {lag.get('p99', 0)}ms")
    elif verdict == "not_applicable":
        detail = scenario.get("not_applicable", "")
    elif verdict == "error" and scenario["error"]:
        detail = scenario["error"].splitlines()[0]
    else:
        # error without an error text: a checker raised (status unknown); fail or
        # inconclusive: the checks that are not a pass say why.
        shown = ("unknown",) if verdict == "error" else ("fail", "inconclusive")
        detail = "; ".join(f"{c['name']}: {c['details']}" for c in scenario["checks"]
                           if _status(c) in shown) or "no check ran"
    load = load_text(m) if verdict in ("pass", "fail", "inconclusive") else ""
    return (f"{verdict.upper():{_VERDICT_WIDTH}} {scenario['name']:<22} "
            f"{scenario['duration_s']:6.1f}s  {detail}" + (f" | {load}" if load else ""))


def load_text(metrics: dict[str, Any]) -> str:
    """`writes 199.8/s of 200 offered, latency p50 3ms p99 12ms`; empty for a run stored
    before the driver recorded its schedule."""
    if "offered_rate_per_s" not in metrics:
        return ""
    latency = metrics.get("write_latency_ms", {})
    return (f"writes {metrics['achieved_rate_per_s']}/s of {metrics['offered_rate_per_s']:g} "
            f"offered, latency p50 {latency.get('p50', 0)}ms p99 {latency.get('p99', 0)}ms")


def check_lines(scenario: dict[str, Any]) -> list[str]:
    """`<scenario>/<check> [status]: details` for every check that did not pass."""
    return [f"  {scenario['name']}/{c['name']}"
            + ("" if _status(c) == "fail" else f" [{_status(c)}]") + f": {c['details']}"
            for c in scenario["checks"] if not c["ok"]]


def render_summary(run: dict[str, Any]) -> str:
    lines = [
        f"run {run['run_id']}  seed={run['seed']}  broker={run['broker']}  "
        f"runtime={run['runtime']}  variant={run['variant']}",
        "",
    ]
    lines += [scenario_line(s) for s in run["scenarios"]]
    verdicts = [s["verdict"] for s in run["scenarios"]]
    inconclusive = verdicts.count("inconclusive")
    skipped = verdicts.count("not_applicable")
    lines += ["", f"{verdicts.count('pass')} of {len(verdicts) - skipped} scenarios passed"
              + (f", {inconclusive} inconclusive" if inconclusive else "")
              + (f", {skipped} not applicable on {run['broker']}" if skipped else "")
              + (" (interrupted)" if run.get("interrupted") else ""),
              f"replay: {run['replay']}"]
    for scenario in run["scenarios"]:
        lines += check_lines(scenario)
    return "\n".join(lines) + "\n"


def write_summary(run: dict[str, Any], report_dir: Path) -> Path:
    path = report_dir / "summary.txt"
    path.write_text(render_summary(run))
    return path
