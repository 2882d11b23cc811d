"""Unit tests for harness.metrics and harness.reporting (JUnit XML, text summary, run.json)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.checkers import base as checks_base
from harness.checkers.base import CheckResult
from harness.errors import ConfigError
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
from harness.results import RunResult, ScenarioResult, exit_code

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
                          error_kind="setup", duration_s=0.5)


def inconclusive(name: str = "publisher_skips") -> ScenarioResult:
    return ScenarioResult(name, 4242, checks=[
        CheckResult("progress", True, "10 of 10 writes succeeded"),
        checks_base.inconclusive("integrity_restored",
                                 "nothing diverged before the repair: every skipped event "
                                 "was healed by a later write")], duration_s=12.0)


def checker_raised(name: str = "duplicates") -> ScenarioResult:
    return ScenarioResult(name, 4242, checks=[
        CheckResult("progress", True, "10 of 10 writes succeeded"),
        checks_base.unknown("effect_once", "checker raised KeyError: 'version' "
                                           "(at delivery.py:120)")], duration_s=9.0)


def junit_tree(run: RunResult) -> ET.Element:
    return ET.fromstring(render_junit(run.to_dict()))


def cases(root: ET.Element) -> dict[tuple[str | None, str | None], ET.Element]:
    """Testcases by (classname, name): (scenario, check)."""
    return {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}


def test_junit_has_one_testcase_per_check_under_its_scenario() -> None:
    root = junit_tree(make_run(passed(), failed(), errored()))
    assert root.tag == "testsuites"
    assert root.get("name") == "replication-chaos-harness.rabbitmq"
    assert [s.get("name") for s in root.iter("testsuite")] == \
        ["steady_state", "consumer_crash", "broken"]
    assert list(cases(root)) == [
        ("steady_state", "progress"), ("steady_state", "convergence"),
        ("consumer_crash", "progress"), ("consumer_crash", "effect_once"),
        ("consumer_crash", "convergence"), ("broken", "scenario")]
    # Two failed checks, one scenario that could not run.
    assert (root.get("tests"), root.get("failures"), root.get("errors"),
            root.get("skipped")) == ("6", "2", "1", "0")
    assert root.get("time") == "24.250"
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert (suites["consumer_crash"].get("tests"), suites["consumer_crash"].get("failures"),
            suites["consumer_crash"].get("time")) == ("3", "2", "14.250")


def test_junit_failed_check_is_its_own_failed_testcase() -> None:
    by_id = cases(junit_tree(make_run(passed(), failed())))
    for check in ("progress", "convergence"):
        passing = by_id[("steady_state", check)]
        assert passing.find("failure") is None and passing.find("error") is None
    assert by_id[("consumer_crash", "progress")].find("failure") is None
    failure = by_id[("consumer_crash", "effect_once")].find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "stock deltas not applied exactly once: 2 stock deltas applied more than once "
        "(StockAdjusted product 3 v5 seq 11)")
    other = by_id[("consumer_crash", "convergence")].find("failure")
    assert other is not None
    assert other.get("message") == "replica diverges from source: 1 rows differ"


def test_junit_failure_text_carries_the_counterexample() -> None:
    check = CheckResult("convergence", False, "1 rows differ",
                        counterexample={"differing": {"7": {"name": ["a", "b"]}}})
    failure = next(junit_tree(make_run(ScenarioResult("s", 1, checks=[check]))).iter(
        "failure"))
    assert failure.text == ('1 rows differ\ncounterexample: '
                            '{"differing": {"7": {"name": ["a", "b"]}}}')


def test_junit_error_testcase_for_a_scenario_that_could_not_run() -> None:
    root = junit_tree(make_run(errored()))
    (case,) = root.iter("testcase")
    assert (case.get("classname"), case.get("name"), case.get("time")) == \
        ("broken", "scenario", "0.500")
    error = case.find("error")
    assert error is not None
    assert error.get("message") == "SetupError: rabbitmq did not start"
    assert error.text == "[setup] SetupError: rabbitmq did not start\nlog tail"


def test_junit_an_error_after_the_checks_keeps_the_checks_and_adds_the_error() -> None:
    scenario = passed()
    scenario.error, scenario.error_kind = "FaultError: could not heal", "run"
    root = junit_tree(make_run(scenario))
    assert [c.get("name") for c in root.iter("testcase")] == \
        ["scenario", "progress", "convergence"]
    assert (root.get("errors"), root.get("failures")) == ("1", "0")


def test_junit_properties_carry_seed_and_replay() -> None:
    suite = next(junit_tree(make_run(failed())).iter("testsuite"))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["seed"] == "4242"
    assert props["variant"] == "none"
    assert props["verdict"] == "fail"
    assert props["replay"] == ("harness run consumer_crash --seed 4242 --broker rabbitmq "
                               "--runtime processes --variant none")
    assert suite[0].tag == "properties"  # before the testcases, as the schema orders them


def test_junit_message_is_truncated_and_escaped() -> None:
    scenario = ScenarioResult("s", 1, checks=[CheckResult("c", False, "<&\"> " + "x" * 900)])
    failure = next(junit_tree(make_run(scenario)).iter("failure"))
    message = failure.get("message")
    assert message is not None
    assert len(message) == 500
    assert message.startswith("<&\">")


def test_junit_stays_parseable_with_control_characters_in_an_error() -> None:
    scenario = ScenarioResult("s", 1, error="ComponentStartError: broker\n\x1b[31mFATAL\x1b[0m")
    root = junit_tree(make_run(scenario))
    assert root.get("errors") == "1"
    error = next(root.iter("error"))
    assert error.text is not None and "?[31mFATAL" in error.text


def test_junit_failed_scenario_without_checks_has_a_failure_testcase() -> None:
    scenario = ScenarioResult("empty", 1)
    assert scenario.verdict == "fail"
    root = junit_tree(make_run(scenario))
    assert root.get("failures") == "1"
    case = next(root.iter("testcase"))
    assert case.get("name") == "scenario"
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "no check ran: the scenario proves nothing"


def test_junit_not_applicable_scenario_is_one_skipped_testcase() -> None:
    scenario = ScenarioResult("reordering", 1, not_applicable="needs hold and release")
    root = junit_tree(make_run(scenario))
    (case,) = root.iter("testcase")
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "not applicable on rabbitmq: needs hold and release"
    assert (root.get("skipped"), root.get("failures"), root.get("errors")) == ("1", "0", "0")


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
    assert line.startswith("PASS           steady_state ")
    assert "12 events, 150.5 ev/s, lag p50 3.5ms p99 20.25ms" in line
    assert scenario_line(failed().to_dict()).startswith("FAIL           consumer_crash ")
    error_line = scenario_line(errored().to_dict())
    assert error_line.startswith("ERROR          broken ")
    assert error_line.endswith("SetupError: rabbitmq did not start")
    # Every verdict, the longest included, puts the scenario name in the same column.
    assert scenario_line(inconclusive().to_dict()).index("publisher_skips") == \
        line.index("steady_state")


def test_write_and_load_reports(tmp_path: Path) -> None:
    run = make_run(passed(), failed())
    path = write_run_json(run, tmp_path)
    assert path == tmp_path / "run.json"
    assert not (tmp_path / "run.json.tmp").exists()
    data = load_run_json(path)
    assert data == json.loads(json.dumps(run.to_dict()))
    assert data["verdict"] == "fail"
    junit = write_junit(data, tmp_path)
    assert ET.parse(junit).getroot().get("failures") == "2"  # consumer_crash's two checks
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


def test_scenario_line_of_an_inconclusive_scenario_names_the_check() -> None:
    line = scenario_line(inconclusive().to_dict())
    assert line.startswith("INCONCLUSIVE   publisher_skips ")
    assert line.endswith("integrity_restored: nothing diverged before the repair: every "
                         "skipped event was healed by a later write")
    assert "progress" not in line


def test_scenario_line_of_a_checker_that_raised_shows_the_unknown_check() -> None:
    result = checker_raised()
    assert result.verdict == "error" and result.error == ""
    line = scenario_line(result.to_dict())
    assert line.startswith("ERROR          duplicates ")
    assert line.endswith("effect_once: checker raised KeyError: 'version' (at delivery.py:120)")
    assert result.first_failure().startswith("effect_once: checker raised KeyError")


def test_junit_inconclusive_check_is_skipped_with_the_reason() -> None:
    root = junit_tree(make_run(passed(), inconclusive()))
    assert (root.get("tests"), root.get("failures"), root.get("errors"),
            root.get("skipped")) == ("4", "0", "0", "1")
    by_id = cases(root)
    assert by_id[("publisher_skips", "progress")].find("skipped") is None
    case = by_id[("publisher_skips", "integrity_restored")]
    assert case.find("failure") is None and case.find("error") is None
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == ("inconclusive: nothing diverged before the repair: "
                                      "every skipped event was healed by a later write")


def test_junit_error_for_a_checker_that_raised_is_on_its_check() -> None:
    root = junit_tree(make_run(checker_raised()))
    assert (root.get("errors"), root.get("tests")) == ("1", "2")
    by_id = cases(root)
    assert by_id[("duplicates", "progress")].find("error") is None
    error = by_id[("duplicates", "effect_once")].find("error")
    assert error is not None
    assert error.get("message") == "checker raised KeyError: 'version' (at delivery.py:120)"


def test_summary_shows_inconclusive_and_unknown_checks_by_status() -> None:
    text = render_summary(make_run(passed(), inconclusive(), checker_raised()).to_dict())
    assert "INCONCLUSIVE   publisher_skips" in text
    assert "1 of 3 scenarios passed, 1 inconclusive" in text
    assert "  publisher_skips/integrity_restored [inconclusive]: nothing diverged" in text
    assert "  duplicates/effect_once [unknown]: checker raised KeyError" in text


def test_run_json_carries_the_run_verdict_and_exit_code() -> None:
    assert make_run(passed()).to_dict()["verdict"] == "pass"
    assert make_run(passed()).to_dict()["exit_code"] == 0
    data = make_run(passed(), inconclusive()).to_dict()
    assert (data["verdict"], data["exit_code"]) == ("inconclusive", 3)
    assert [s["verdict"] for s in data["scenarios"]] == ["pass", "inconclusive"]
    data = make_run(errored(), errored("other")).to_dict()
    assert (data["verdict"], data["exit_code"]) == ("error", 2)
    data = make_run(passed(), interrupted=True).to_dict()
    assert (data["verdict"], data["exit_code"]) == ("fail", 130)
    # Replay re-runs what did not pass, inconclusive included.
    assert make_run(passed(), inconclusive()).replay_command().startswith(
        "harness run publisher_skips --seed 4242")


def _setup_error(name: str) -> ScenarioResult:
    return ScenarioResult(name, 1, error="SteadyStateNotReached: steady state not reached",
                          error_kind="setup")


def _run_error(name: str, kind: str = "run") -> ScenarioResult:
    return ScenarioResult(name, 1, error="FaultError: could not heal", error_kind=kind)


@pytest.mark.parametrize(("scenarios", "expected"), [
    ([passed()], 0),
    ([passed(), passed("b")], 0),
    ([passed(), inconclusive()], 3),
    ([inconclusive(), failed()], 1),
    ([passed(), failed()], 1),
    ([passed(), checker_raised()], 1),
    ([inconclusive(), checker_raised()], 1),
    ([_run_error("a")], 1),
    ([_run_error("a", "internal")], 1),
    ([_setup_error("a")], 2),
    ([_setup_error("a"), _setup_error("b")], 2),
    # Something was set up and judged: the run says what it found, not "usage error".
    ([_setup_error("a"), passed()], 1),
    ([_setup_error("a"), inconclusive()], 1),
    ([_setup_error("a"), _run_error("b")], 1),
    # A scenario without any check proves nothing.
    ([ScenarioResult("empty", 1)], 1),
    ([], 1),
])
def test_exit_code_follows_verdicts_and_error_kinds(scenarios: list[ScenarioResult],
                                                     expected: int) -> None:
    assert exit_code(scenarios) == expected
    assert exit_code(scenarios, interrupted=True) == 130


@pytest.mark.parametrize(("text", "problem"), [
    ("{not json", "is not valid JSON"),
    ("[]", "the top level is not an object"),
    ('{"run_id": "r"}', "seed is missing"),
])
def test_load_run_json_rejects_malformed_files_naming_the_file(
        tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "run.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_run_json(path)
    assert info.value.field == str(path)
    assert problem in info.value.problem
    assert "\n" not in str(info.value)


def test_load_run_json_names_the_mistyped_key_of_a_scenario(tmp_path: Path) -> None:
    data = make_run(passed(), failed()).to_dict()
    data["scenarios"][1]["checks"][0]["details"] = 7
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        load_run_json(path)
    assert info.value.problem == "scenarios[1].checks[0].details has the wrong type (int)"


def test_load_run_json_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_run_json(tmp_path / "run.json")
