"""Unit tests for harness.metrics and harness.reporting (JUnit XML, text summary, run.json)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.checkers.base import CheckResult
from harness.metrics import percentile, replication_metrics
from harness.reporting import (
    load_run_json,
    render_junit,
    render_summary,
    scenario_line,
    write_junit,
    write_run_json,
    write_summary,
)
from harness.results import RunResult, ScenarioResult

# -- metrics --------------------------------------------------------------------------------


def delivery(event_id: str | None, occurred: float, committed: float,
             redelivered: bool = False, outcome: str = "applied") -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at": occurred, "committed_at": committed,
            "redelivered": redelivered, "outcome": outcome}


def test_percentile_picks_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(values, 0.0) == 1.0
    assert percentile(values, 0.5) == 51.0  # index round(49.5) = 50 (banker's rounding)
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) == 0.0


def test_replication_metrics_on_handcrafted_deliveries() -> None:
    # Lags of 10, 20, ..., 100 ms for events e1..e10, occurred at t=100+i.
    deliveries = [delivery(f"e{i}", 100.0 + i, 100.0 + i + i / 100) for i in range(1, 11)]
    # Redeliveries of e1 (later, bigger lag) must not count: lag is the first processing.
    deliveries.append(delivery("e1", 101.0, 150.0, redelivered=True, outcome="deduplicated"))
    deliveries.append(delivery(None, 0.0, 0.0, outcome="dead_lettered"))
    metrics = replication_metrics(deliveries)
    assert metrics["events_processed"] == 10
    assert metrics["deliveries"] == 12
    assert metrics["redelivered"] == 1
    # p50 is index round(4.5) == 4 of the ten sorted lags (round half to even).
    assert metrics["lag_ms"] == {"p50": 50.0, "p95": 100.0, "p99": 100.0, "max": 100.0}
    # window: first occurred 101.0 to last commit 110.1 -> 10 events / 9.1 s
    assert metrics["throughput_eps"] == round(10 / 9.1, 1)


def test_replication_metrics_percentiles_for_one_slow_event() -> None:
    deliveries = [delivery(f"e{i}", 10.0, 10.001) for i in range(99)]
    deliveries.append(delivery("slow", 10.0, 12.0))
    lag = replication_metrics(deliveries)["lag_ms"]
    assert lag["p50"] == 1.0
    assert lag["p95"] == 1.0
    assert lag["p99"] == 1.0  # nearest rank: index round(0.99 * 99) == 98, a fast one
    assert lag["max"] == 2000.0


def test_replication_metrics_clamps_clock_skew_to_zero() -> None:
    metrics = replication_metrics([delivery("a", 10.0, 9.5), delivery("b", 10.0, 10.2)])
    assert metrics["lag_ms"]["p50"] == 0.0
    assert metrics["lag_ms"]["max"] == 200.0


def test_replication_metrics_of_nothing() -> None:
    metrics = replication_metrics([])
    expected = {"events_processed": 0, "deliveries": 0, "redelivered": 0,
                "throughput_eps": 0.0, "lag_ms": {"p50": 0.0, "p95": 0.0, "p99": 0.0,
                                                  "max": 0.0}}
    assert {k: metrics[k] for k in expected} == expected


# -- reporting ------------------------------------------------------------------------------


def make_run(*scenarios: ScenarioResult, interrupted: bool = False) -> RunResult:
    run = RunResult("20240101-000000-s4242", 4242, "rabbitmq", "processes", "none",
                    started_at=1.0, finished_at=2.0, interrupted=interrupted)
    run.scenarios.extend(scenarios)
    return run


def passed(name: str = "steady_state") -> ScenarioResult:
    return ScenarioResult(
        name, 4242, checks=[CheckResult("progress", True, "10 of 10 writes succeeded"),
                            CheckResult("convergence", True, "replica equals source")],
        metrics={"events_processed": 12, "throughput_eps": 150.5,
                 "lag_ms": {"p50": 3.5, "p99": 20.25}}, duration_s=9.5)


def failed(name: str = "consumer_crash") -> ScenarioResult:
    return ScenarioResult(
        name, 4242, checks=[
            CheckResult("progress", True, "10 of 10 writes succeeded"),
            CheckResult("effect_once", False,
                        "stock deltas not applied exactly once: 2 stock deltas applied "
                        "more than once (StockAdjusted product 3 v5 seq 11)"),
            CheckResult("convergence", False, "replica diverges from source: 1 rows differ")],
        duration_s=14.25)


def errored(name: str = "broken") -> ScenarioResult:
    return ScenarioResult(name, 4242, error="SetupError: rabbitmq did not start\nlog tail",
                          duration_s=0.5)


def junit_tree(run: RunResult) -> ET.Element:
    return ET.fromstring(render_junit(run.to_dict()))


def test_junit_counts_tests_failures_and_errors() -> None:
    suite = junit_tree(make_run(passed(), failed(), errored()))
    assert suite.tag == "testsuite"
    assert suite.get("name") == "replication-chaos-harness.rabbitmq"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    assert suite.get("time") == "24.250"
    assert [c.get("name") for c in suite.iter("testcase")] == \
        ["steady_state", "consumer_crash", "broken"]


def test_junit_failure_element_names_the_failed_check() -> None:
    suite = junit_tree(make_run(passed(), failed()))
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["steady_state"].find("failure") is None
    assert cases["steady_state"].find("error") is None
    failure = cases["consumer_crash"].find("failure")
    assert failure is not None
    message = failure.get("message")
    assert message is not None
    assert message.startswith("effect_once: stock deltas not applied exactly once")
    assert "applied more than once" in message
    assert failure.text is not None
    assert "convergence: replica diverges" in failure.text
    system_out = cases["consumer_crash"].find("system-out")
    assert system_out is not None and system_out.text is not None
    assert "[ok] progress" in system_out.text
    assert "[FAIL] effect_once" in system_out.text


def test_junit_error_element_for_a_scenario_that_could_not_run() -> None:
    suite = junit_tree(make_run(errored()))
    error = next(suite.iter("testcase")).find("error")
    assert error is not None
    assert error.get("message") == "SetupError: rabbitmq did not start"
    assert error.text == "SetupError: rabbitmq did not start\nlog tail"


def test_junit_properties_carry_seed_and_replay() -> None:
    suite = junit_tree(make_run(failed()))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["seed"] == "4242"
    assert props["variant"] == "none"
    assert props["replay"] == ("harness run consumer_crash --seed 4242 --broker rabbitmq "
                               "--runtime processes --variant none")


def test_junit_message_is_truncated_and_escaped() -> None:
    scenario = ScenarioResult("s", 1, checks=[CheckResult("c", False, "<&\"> " + "x" * 900)])
    failure = next(junit_tree(make_run(scenario)).iter("failure"))
    message = failure.get("message")
    assert message is not None
    assert len(message) == 500
    assert message.startswith("c: <&\">")


def test_junit_stays_parseable_with_control_characters_in_an_error() -> None:
    scenario = ScenarioResult("s", 1, error="ComponentStartError: broker\n\x1b[31mFATAL\x1b[0m")
    suite = junit_tree(make_run(scenario))
    assert suite.get("errors") == "1"


def test_junit_failed_scenario_without_checks_has_a_failure_element() -> None:
    scenario = ScenarioResult("empty", 1)
    assert scenario.verdict == "fail"
    suite = junit_tree(make_run(scenario))
    assert suite.get("failures") == "1"
    assert next(suite.iter("testcase")).find("failure") is not None


def test_summary_mentions_seed_verdicts_and_replay() -> None:
    text = render_summary(make_run(passed(), failed()).to_dict())
    assert "seed=4242" in text
    # Only what failed is replayed.
    assert "replay: harness run consumer_crash --seed 4242" in text
    assert "1 of 2 scenarios passed" in text
    assert "consumer_crash/effect_once: stock deltas not applied exactly once" in text
    assert "consumer_crash/convergence: replica diverges" in text
    assert "steady_state/" not in text
    assert "(interrupted)" not in text


def test_summary_marks_an_interrupted_run() -> None:
    text = render_summary(make_run(passed(), interrupted=True).to_dict())
    assert "1 of 1 scenarios passed (interrupted)" in text


def test_scenario_lines() -> None:
    line = scenario_line(passed().to_dict())
    assert line.startswith("PASS  steady_state")
    assert "12 events, 150.5 ev/s, lag p50 3.5ms p99 20.25ms" in line
    assert scenario_line(failed().to_dict()).startswith("FAIL  consumer_crash")
    error_line = scenario_line(errored().to_dict())
    assert error_line.startswith("ERROR broken")
    assert error_line.endswith("SetupError: rabbitmq did not start")


def test_write_and_load_reports(tmp_path: Path) -> None:
    run = make_run(passed(), failed())
    path = write_run_json(run, tmp_path)
    assert path == tmp_path / "run.json"
    assert not (tmp_path / "run.json.tmp").exists()
    data = load_run_json(path)
    assert data == json.loads(json.dumps(run.to_dict()))
    assert data["verdict"] == "fail"
    junit = write_junit(data, tmp_path)
    assert ET.parse(junit).getroot().get("failures") == "1"
    summary = write_summary(data, tmp_path)
    assert summary.read_text() == render_summary(data)


def test_results_verdicts() -> None:
    assert passed().verdict == "pass"
    assert failed().verdict == "fail"
    assert failed().first_failure().startswith("effect_once: ")
    assert errored().verdict == "error"
    assert errored().first_failure() == "SetupError: rabbitmq did not start"
    assert make_run(passed()).passed
    assert not make_run(passed(), interrupted=True).passed
    assert not make_run().passed
