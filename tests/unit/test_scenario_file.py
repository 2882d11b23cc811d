"""Scenario files (harness/scenario_file.py): every catalogue scenario survives dump and
load unchanged, and a malformed file gets a ConfigError naming the file, the key path and
the fix. The CLI side (`harness show`, `run --scenario-file` errors) stops before any run."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

import harness.session
from harness import cli
from harness.contract.grants import RESTRICTED_FIELDS
from harness.errors import ConfigError
from harness.faults.catalogue import ParamRange
from harness.results import RunResult, ScenarioResult
from harness.scenario import ConsumerSpec, FaultStep, Repair, Scenario
from harness.scenario_file import ScenarioFileError, dump, load, load_file
from harness.session import load_catalogue
from harness.workload import WorkloadSpec

CATALOGUE = load_catalogue()

# Every field of every dataclass a file holds set to something other than its default.
EVERYTHING = Scenario(
    name="everything",
    description='all fields "set"\tand a \\ backslash, ü and \N{PILE OF POO}',
    workload=WorkloadSpec(rate_per_s=150.5, duration_s=9, initial_products=0,
                          mix=(("create", 1), ("stock", 0.25)), concurrency=4),
    faults=(FaultStep("latency", "consumer_broker", at_s=2, duration_s=1.5, jitter_s=0.25,
                      params={"latency": ParamRange(100, 400), "jitter": ParamRange(5, 5),
                              "toxicity": ParamRange(0.5, 0.5)},
                      stream="upstream"),
            FaultStep("kill", "consumer2", at_s=6.0)),
    converge_timeout_s=45,
    settle_s=2.5,
    repair=Repair("full"),
    consumers=(ConsumerSpec(name="shop"),
               ConsumerSpec(name="orders2", join_at_s=5.0, initial_sync=True),
               ConsumerSpec(name="orders3", instances=2, grants=RESTRICTED_FIELDS)),
    min_write_share=0.5,
    requires=frozenset({"consumer_groups"}),
    dbs=("postgres",),
)

MINIMAL = 'name = "mine"\ndescription = "a file of my own"\n'


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_every_catalogue_scenario_round_trips(name: str) -> None:
    text = dump(CATALOGUE[name])
    back = load(text, f"{name}.toml")
    assert back == CATALOGUE[name]
    assert dump(back) == text


def test_a_scenario_with_every_field_set_round_trips() -> None:
    text = dump(EVERYTHING)
    assert load(text, "everything.toml") == EVERYTHING
    assert dump(load(text, "everything.toml")) == text
    # Each field is written (so a field added later must be taught to the reader too).
    data = tomllib.loads(text)
    assert set(data) == {f.name for f in fields(Scenario)}
    assert set(data["workload"]) == {f.name for f in fields(WorkloadSpec)}
    assert set(data["repair"]) == {f.name for f in fields(Repair)}
    assert set(data["faults"][0]) == {f.name for f in fields(FaultStep)}
    assert set(data["consumers"][1]) | set(data["consumers"][2]) \
        == {f.name for f in fields(ConsumerSpec)}


def test_defaults_are_left_out_and_restored() -> None:
    scenario = load(MINIMAL, "mine.toml")
    assert scenario == Scenario("mine", "a file of my own")
    assert dump(scenario).splitlines()[3:] == MINIMAL.splitlines()


def test_a_fixed_parameter_is_a_number_and_a_range_an_array() -> None:
    data = tomllib.loads(dump(EVERYTHING))
    assert data["faults"][0]["params"] == {"latency": [100, 400], "jitter": 5,
                                           "toxicity": 0.5}


def test_the_mix_is_a_table_in_its_order() -> None:
    data = tomllib.loads(dump(EVERYTHING))
    assert list(data["workload"]["mix"].items()) == [("create", 1), ("stock", 0.25)]


def test_a_mix_naming_a_kind_twice_cannot_be_written() -> None:
    twice = Scenario("twice", "x", workload=WorkloadSpec(
        mix=(("update", 0.5), ("update", 0.5))))
    with pytest.raises(ValueError, match="names an operation kind twice"):
        dump(twice)


def fault_file(*fault_lines: str, extra: str = "") -> str:
    return MINIMAL + extra + "\n[[faults]]\n" + "\n".join(fault_lines) + "\n"


def error_of(text: str) -> ScenarioFileError:
    with pytest.raises(ScenarioFileError) as caught:
        load(text, "bad.toml")
    assert isinstance(caught.value, ConfigError)  # what the CLI reports without traceback
    return caught.value


def test_a_missing_required_key_is_named() -> None:
    error = error_of('name = "x"\n')
    assert error.path == "description"
    assert str(error).startswith("bad.toml: description: missing (fix: add description = ")


def test_a_missing_key_of_a_fault_is_named_with_its_index() -> None:
    error = error_of(fault_file('action = "kill"', 'target = "consumer"', "at_s = 1")
                     + '\n[[faults]]\naction = "kill"\nat_s = 2\n')
    assert error.path == "faults[1].target"
    assert "missing" in str(error)


def test_an_unknown_key_suggests_the_close_one() -> None:
    error = error_of(MINIMAL + "converge_timeout = 20\n")
    assert error.path == "converge_timeout"
    assert error.problem == "unknown key"
    assert "did you mean 'converge_timeout_s'?" in error.fix


def test_an_unknown_key_in_a_fault_suggests_the_close_one() -> None:
    error = error_of(fault_file('action = "kill"', 'target = "consumer"', "at_s = 1",
                                "duraton_s = 2"))
    assert error.path == "faults[0].duraton_s"
    assert "did you mean 'duration_s'?" in error.fix


def test_an_unknown_key_without_a_close_one_lists_the_keys() -> None:
    error = error_of(MINIMAL + "\n[workload]\nspeed = 3\n")
    assert error.path == "workload.speed"
    assert "did you mean" not in error.fix
    assert "rate_per_s, duration_s" in error.fix


@pytest.mark.parametrize(("body", "path", "expected"), [
    (MINIMAL + 'settle_s = "1"\n', "settle_s", "expected a number, got string '1'"),
    (MINIMAL + "\n[workload]\ninitial_products = 2.5\n", "workload.initial_products",
     "expected a whole number, got float 2.5"),
    (MINIMAL + "\n[[consumers]]\ninitial_sync = 1\n", "consumers[0].initial_sync",
     "expected true or false, got integer 1"),
    (MINIMAL + "dbs = \"postgres\"\n", "dbs", "expected an array of strings"),
    (MINIMAL + "workload = 3\n", "workload", "expected a table, got integer 3"),
    (MINIMAL + "faults = 3\n", "faults", "expected an array of tables, got integer"),
    (fault_file('action = "latency"', 'target = "relay_broker"', "at_s = 1",
                'params = { latency = "300" }'),
     "faults[0].params.latency", "expected a number or [low, high], got string '300'"),
    (fault_file('action = "latency"', 'target = "relay_broker"', "at_s = 1",
                "params = { latency = [1, 2, 3] }"),
     "faults[0].params.latency", "expected a number or [low, high], got array"),
    (MINIMAL + "\n[workload]\nmix = { update = true }\n", "workload.mix.update",
     "expected a number, got boolean True"),
])
def test_a_wrong_type_is_named(body: str, path: str, expected: str) -> None:
    error = error_of(body)
    assert error.path == path
    assert error.problem.startswith(expected)


def test_an_unknown_fault_action_is_refused_by_the_catalogue() -> None:
    error = error_of(fault_file('action = "explode"', 'target = "consumer"', "at_s = 1"))
    assert error.path == "faults[0].action"
    assert error.problem == "unknown fault action 'explode'"
    assert "kill" in error.fix and "crash_mid_batch" in error.fix


def test_a_target_the_action_does_not_take_is_refused() -> None:
    error = error_of(fault_file('action = "duplicate"', 'target = "broker"', "at_s = 1"))
    assert error.path == "faults[0].target"
    assert "duplicate cannot target 'broker'" in error.problem


def test_a_bad_value_gets_the_python_scenarios_error_at_its_path() -> None:
    text = fault_file('action = "kill"', 'target = "consumer"', "at_s = 1") \
        + '\n[[faults]]\naction = "kill"\ntarget = "consumer"\nat_s = 2\nduration_s = -1\n'
    error = error_of(text)
    with pytest.raises(ConfigError) as python:
        Scenario("mine", "x", faults=(FaultStep("kill", "consumer", at_s=1),
                                      FaultStep("kill", "consumer", at_s=2, duration_s=-1)))
    assert error.path == "faults[1].duration_s"
    assert (error.problem, error.fix) == (python.value.problem, python.value.fix)
    assert str(error) == ("bad.toml: faults[1].duration_s: must be >= 0, got -1 "
                          "(fix: give a non-negative number of seconds)")


def test_a_workload_value_error_keeps_its_path() -> None:
    error = error_of(MINIMAL + "\n[workload]\nrate_per_s = 0\n")
    assert error.path == "workload.rate_per_s"
    assert "must be > 0" in error.problem


def test_an_inverted_parameter_range_is_refused() -> None:
    error = error_of(fault_file('action = "latency"', 'target = "relay_broker"', "at_s = 1",
                                "params = { latency = [400, 100] }"))
    assert error.path == "faults[0].params.latency"
    assert "inverted range" in error.problem


def test_an_unknown_fault_parameter_is_refused() -> None:
    error = error_of(fault_file('action = "latency"', 'target = "relay_broker"', "at_s = 1",
                                "params = { latency_ms = 400 }"))
    assert error.path == "faults[0].params"
    assert "latency_ms" in error.problem and "latency" in error.fix


def test_a_bad_scenario_name_is_named() -> None:
    error = error_of('name = "my scenario"\ndescription = "x"\n')
    assert error.path == "name"
    assert "not a valid scenario name" in error.problem


def test_invalid_toml_names_the_file_and_line() -> None:
    error = error_of(MINIMAL + "settle_s = \n")
    assert str(error).startswith("bad.toml: is not valid TOML: ")
    assert "line 3" in error.problem


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="does not exist") as caught:
        load_file(tmp_path / "nope.toml")
    assert caught.value.source == str(tmp_path / "nope.toml")


def test_a_scenario_from_a_file_is_recorded_and_replayed_from_it() -> None:
    run = RunResult("r1", 7, "rabbitmq", "processes", "none", started_at=0.0)
    run.scenarios += [ScenarioResult("steady_state", 7),
                      ScenarioResult("mine", 7, scenario_file="/tmp/my file.toml")]
    assert run.replay_command().startswith(
        "harness run steady_state --scenario-file '/tmp/my file.toml' --seed 7 ")
    assert [s["scenario_file"] for s in run.to_dict()["scenarios"]] == ["",
                                                                        "/tmp/my file.toml"]


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def no_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Nothing gets as far as starting a run; reports would go to a scratch directory."""
    monkeypatch.chdir(tmp_path)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("run_scenarios must not be reached in a unit test")

    monkeypatch.setattr(harness.session, "run_scenarios", refuse)
    yield


def test_show_prints_the_scenario_as_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["show", "consumer_crash"]) == cli.EXIT_PASS
    out = capsys.readouterr().out
    assert load(out, "shown.toml") == CATALOGUE["consumer_crash"]


def test_show_of_an_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["show", "steady"]) == cli.EXIT_USAGE
    assert "unknown scenario(s) steady" in capsys.readouterr().err


def test_run_of_a_malformed_file_is_one_line_naming_file_and_field(
        no_run: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL + "settle = 2\n")
    assert cli.main(["run", "--scenario-file", str(path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err == (f"harness: error: {path}: settle: unknown key (fix: did you mean "
                   "'settle_s'? a scenario takes: name, description, workload, faults, "
                   "converge_timeout_s, settle_s, repair, consumers, min_write_share, "
                   "requires, dbs)\n")


def test_a_file_and_the_catalogue_scenario_it_shows_are_one_name_twice(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The real run_scenarios: it refuses the repeat before it starts anything.
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "steady.toml"
    path.write_text(dump(CATALOGUE["steady_state"]))
    assert cli.main(["run", "steady_state", "--scenario-file", str(path)]) == cli.EXIT_USAGE
    assert "named more than once: steady_state" in capsys.readouterr().err


def test_the_worked_example_in_the_docs_is_a_valid_scenario() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "scenario-files.md").read_text()
    example = page.split("```toml\n", 1)[1].split("```", 1)[0]
    scenario = load(example, "docs/scenario-files.md")
    assert [step.action for step in scenario.faults] == [
        "latency", "pause", "crash_point:consumer.after_apply_before_ack"]
    assert scenario.faults[0].params == {"latency": ParamRange(200, 400),
                                         "jitter": ParamRange(20, 20)}
