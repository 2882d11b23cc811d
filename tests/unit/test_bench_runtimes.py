"""`harness bench runtimes`: its figures from its runs (no Docker needed)."""

from __future__ import annotations

from harness.bench.runtimes import report_lines, summarize


def _run(runtime: str, setup: float, teardown: float, lag: float,
         verdict: str = "pass") -> dict[str, object]:
    return {"runtime": runtime, "verdict": verdict, "report_dir": f"/r/{runtime}",
            "setup_s": setup, "teardown_s": teardown, "lag_p99_ms": lag}


RUNS = [_run("processes", 8.0, 2.0, 100.0), _run("processes", 9.0, 2.0, 120.0),
        _run("processes", 12.0, 2.0, 300.0), _run("containers", 11.0, 3.0, 90.0),
        _run("containers", 12.0, 3.0, 150.0), _run("containers", 40.0, 9.0, 900.0)]


def test_set_up_plus_tear_down_is_held_to_each_runtime_budget_by_median() -> None:
    sections = summarize(RUNS)
    figures = {c["name"]: c for section in sections for c in section["comparisons"]}
    processes = figures["set-up + tear-down (processes)"]
    assert (processes["value"], processes["raw"], processes["met"]) == (11.0, 10.0, False)
    containers = figures["set-up + tear-down (containers)"]
    assert (containers["value"], containers["raw"], containers["met"]) == (15.0, 30.0, True)
    # The parts are shown without a target of their own.
    assert figures["set-up (containers)"]["target"] == ""


def test_lag_compares_containers_with_processes_by_median() -> None:
    lag = summarize(RUNS)[-1]["comparisons"][0]
    assert (lag["value"], lag["raw"], lag["ratio"]) == (150.0, 120.0, 1.25)


def test_a_run_that_did_not_pass_is_named_in_the_report() -> None:
    runs = [*RUNS, _run("containers", 10.0, 2.0, 80.0, verdict="fail")]
    data = {"broker": "rabbitmq", "seed": 1, "repeats": 3, "images": {"warm_s": 1.0},
            "runs": runs, "sections": summarize(runs)}
    lines = report_lines(data)
    assert "set-up + tear-down (processes): median 11.0 s / budget 10.0 s" in lines[1]
    assert lines[-1].startswith("1 run(s) did not pass") and "/r/containers" in lines[-1]
