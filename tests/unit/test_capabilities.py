"""Broker capabilities: a scenario whose faults need what a broker's adapter cannot do is
reported as not applicable there, never started and never counted as a pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.brokers import capabilities as caps
from harness.brokers.registry import BROKERS, broker_plugin
from harness.checkers.base import CheckResult
from harness.errors import ConfigError
from harness.results import ScenarioResult, exit_code
from harness.runner import ScenarioRun
from harness.scenario import FaultStep, Scenario
from harness.session import load_catalogue
from harness.settings import RunSettings


def test_fault_actions_declare_what_they_need() -> None:
    duplicates = Scenario("d", "x", faults=(FaultStep("duplicate", "consumer", 1.0),))
    assert duplicates.needs == {caps.INJECT_RAW}
    assert Scenario("s", "x").needs == frozenset()


def test_a_scenario_needing_a_missing_capability_says_why() -> None:
    reorder = Scenario("r", "x", faults=(FaultStep("reorder", "consumer", 1.0, 2.0),
                                         FaultStep("kill", "consumer", 3.0)))
    assert reorder.not_applicable_on(caps.ALL) == ""
    reason = reorder.not_applicable_on(frozenset({caps.INJECT_RAW}))
    assert "reorder" in reason and "kill" not in reason
    assert caps.HOLD_AND_RELEASE in reason


def test_every_catalogue_scenario_runs_on_rabbitmq() -> None:
    # But those about a partitioned log's consumer groups, which a queue broker lacks.
    offered = broker_plugin("rabbitmq").capabilities
    assert all(not s.not_applicable_on(offered) for s in load_catalogue().values()
               if caps.CONSUMER_GROUPS not in s.needs)


def test_unknown_broker_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--broker"):
        broker_plugin("zeromq")
    assert "rabbitmq" in BROKERS


def _passed(name: str) -> ScenarioResult:
    return ScenarioResult(name, 1, checks=[CheckResult("progress", True, "ok")])


def test_not_applicable_counts_neither_way() -> None:
    skipped = ScenarioResult("reordering", 1, not_applicable="needs hold_and_release")
    assert skipped.verdict == "not_applicable" and not skipped.passed
    assert exit_code([_passed("steady_state"), skipped]) == 0
    assert exit_code([skipped]) == 2  # nothing asked for can run on this broker


def test_list_for_a_broker_names_what_cannot_run_and_why(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = BROKERS["rabbitmq"]
    poorer = type(plugin)(plugin.name, plugin.description, frozenset({caps.LOSE_DATA}),
                          plugin.start, plugin.service_url)
    monkeypatch.setitem(BROKERS, "rabbitmq", poorer)
    assert cli.main(["list", "--broker", "rabbitmq"]) == 0
    out = capsys.readouterr().out
    listed, _, rest = out.partition("not applicable on rabbitmq:")
    assert "steady_state" in listed and "broker_data_loss" in listed
    assert "duplicates" in rest and caps.INJECT_RAW in rest
    assert "reordering" in rest and caps.HOLD_AND_RELEASE in rest


def test_the_runner_starts_nothing_for_a_scenario_that_cannot_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = BROKERS["rabbitmq"]

    def must_not_start(*_args: object) -> None:
        raise AssertionError("a scenario that cannot run started a broker")

    monkeypatch.setitem(BROKERS, "rabbitmq", type(plugin)(
        plugin.name, plugin.description, frozenset(), must_not_start, plugin.service_url))
    scenario = load_catalogue()["duplicates"]
    messages: list[str] = []
    result = ScenarioRun(scenario, RunSettings(seed=1), tmp_path,
                         messages.append).execute()
    assert result.verdict == "not_applicable"
    assert caps.INJECT_RAW in result.not_applicable
    assert any("not applicable on rabbitmq" in m for m in messages)
    assert not (tmp_path / "duplicates").exists()
