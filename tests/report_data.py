"""A stored run folder shaped like one `harness run` writes (run.json from the real result
classes, history.jsonl and deliveries.json with the records the runner stores), built in
a moment for the tests of the HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.checkers.base import CheckResult
from harness.reporting import write_run_json
from harness.results import RunResult, ScenarioResult

START = 1_796_000_000.0  # wall clock of the load's first write
RATE = 200  # writes per second
LOAD_S = 12.0
PAUSE = (3.0, 8.0)  # broker paused, seconds into the load
RECOVERY_S = 0.3


def _history(folder: Path, name: str, faults: list[dict[str, Any]]) -> list[float]:
    """Writes at RATE for LOAD_S; returns their times."""
    times = [START + i / RATE for i in range(int(LOAD_S * RATE))]
    records: list[dict[str, Any]] = [
        {"t": START - 5, "kind": "scenario", "name": name, "seed": 7, "plan": []},
        {"t": START - 4, "kind": "lifecycle", "event": "start", "component": "broker",
         "pid": 101}]
    records += [{"t": t, "kind": "op", "index": i, "op": "update", "product_id": i % 50 + 1,
                 "ok": True, "status": 200, "event_id": f"e{i}", "sequence": i + 1,
                 "latency_ms": 4.0} for i, t in enumerate(times)]
    records += [{"t": f["healed_at"], "kind": "fault", **{k: v for k, v in f.items()
                                                          if k != "recovery_s"}}
                for f in faults]
    folder.mkdir(parents=True)
    (folder / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return times


def _deliveries(times: list[float], paused: tuple[float, float] | None) -> list[dict[str, Any]]:
    """Each write applied 5 ms later, except that a paused broker holds everything written
    from the pause on until its heal (plus RECOVERY_S of catching up)."""
    out = []
    for i, t in enumerate(times):
        occurred = t - 0.004
        committed = occurred + 0.005
        if paused and START + paused[0] <= occurred < START + paused[1]:
            committed = START + paused[1] + RECOVERY_S * (occurred - START - paused[0]) \
                / (paused[1] - paused[0])
        out.append({"event_id": f"e{i}", "occurred_at": occurred, "committed_at": committed,
                    "received_at": committed - 0.001, "outcome": "applied",
                    "redelivered": False, "sequence": i + 1, "type": "ProductUpserted"})
    # One duplicate delivery, as a broker outage tends to cause.
    out.append({**out[700], "outcome": "deduplicated", "redelivered": True,
                "committed_at": START + paused[1] + 0.1 if paused else out[700]["committed_at"]})
    return out


def build_run(root: Path) -> Path:
    """Three scenarios in run order: steady_state (pass), broker_outage_pause (fail: one
    check failed, one pause fault), broken (error while setting up, no history). Returns
    the run's folder."""
    run_dir = root / "20261130-120000-s7"
    pause = {"fault": "pause:broker", "target": "broker", "phase": "inject",
             "at": START + PAUSE[0], "healed_at": START + PAUSE[1], "params": {},
             "verified": True, "evidence": "broker (pid 101) frozen for 5.00s",
             "recovery_s": RECOVERY_S, "impact_observed": True,
             "impact": "lag reached by 25% of the 1000 events written during its 5.0s: 4.1s"}
    scenarios = []
    for name, faults in (("steady_state", []), ("broker_outage_pause", [pause])):
        folder = run_dir / name
        times = _history(folder, name, faults)
        deliveries = _deliveries(times, PAUSE if faults else None)
        (folder / "deliveries.json").write_text(json.dumps(deliveries))
        (folder / "consumer.log").write_text("consumer started\n")
        (folder / "broker").mkdir()
        (folder / "broker" / "rabbitmq.log").write_text("broker started\n")
        checks = [CheckResult("progress", True, f"{len(times)} of {len(times)} planned "
                              "writes succeeded"),
                  CheckResult("convergence", True, "replica equals source: 50 products")]
        if faults:
            checks.insert(1, CheckResult(
                "no_lost_updates", False, "3 published events were never processed: "
                "<e1>, <e2>, <e3>", counterexample={"missing": ["e1", "e2", "e3"]}))
        scenarios.append(ScenarioResult(
            name, 7, checks=checks, faults=faults, duration_s=20.0,
            report_dir=str(folder),
            metrics={"events_processed": len(times), "throughput_eps": 200.0,
                     "lag_ms": {"p50": 5.0, "p95": 4000.0, "p99": 5100.0, "max": 5300.0},
                     "outcomes": {"applied": len(times), "deduplicated": 1},
                     "redelivered": 1}))
    (run_dir / "broken").mkdir(parents=True)
    scenarios.append(ScenarioResult("broken", 7, error="SetupError: rabbitmq did not start",
                                    error_kind="setup", duration_s=1.0,
                                    report_dir=str(run_dir / "broken")))
    result = RunResult("20261130-120000-s7", 7, "rabbitmq", "processes", "none",
                       started_at=START - 10, finished_at=START + 60)
    result.scenarios.extend(scenarios)
    write_run_json(result, run_dir)
    return run_dir
