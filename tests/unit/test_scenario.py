"""Unit tests for harness.scenario and harness.faults.catalogue: validation and seeding."""

from __future__ import annotations

import math
from typing import Any

import pytest

from harness.errors import ConfigError, HarnessError
from harness.faults.catalogue import ACTIONS, LINK_TARGETS, PROCESS_TARGETS, ParamRange
from harness.scenario import ConsumerSpec, FaultStep, Repair, Scenario
from harness.workload import WorkloadSpec
from scenarios import all_scenarios


def build(*faults: Any, **kwargs: Any) -> Scenario:
    return Scenario(name=kwargs.pop("name", "x"), description="test",
                    faults=tuple(faults), **kwargs)


def config_error(*faults: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build(*faults, **kwargs)
    return info.value


def test_config_error_message_names_field_problem_and_fix() -> None:
    error = ConfigError("x.faults[0].action", "unknown", "use kill")
    assert isinstance(error, HarnessError)
    assert str(error) == "x.faults[0].action: unknown (fix: use kill)"
    assert (error.field, error.problem, error.fix) == ("x.faults[0].action", "unknown",
                                                       "use kill")


def test_valid_scenario_builds() -> None:
    step = FaultStep("crash_mid_batch", "consumer", at_s=1.5, duration_s=2, jitter_s=0.5,
                     params={"delay_s": ParamRange(0.01, 0.02)})
    scenario = build(FaultStep("kill", "broker", at_s=0), step, converge_timeout_s=5,
                     settle_s=0)
    assert scenario.faults[1] is step
    assert scenario.name == "x"


@pytest.mark.parametrize(("action", "target"),
                         [(a, t) for a in sorted(ACTIONS) for t in ACTIONS[a].targets])
def test_every_action_and_target_is_accepted(action: str, target: str) -> None:
    # A consumer's database link exists on PostgreSQL only.
    dbs = ("postgres",) if target == "consumer_db" else ("sqlite", "postgres")
    assert build(FaultStep(action, target, at_s=0), dbs=dbs).faults[0].action == action


TWO = (ConsumerSpec(), ConsumerSpec("orders2", instances=2))


@pytest.mark.parametrize("action", sorted(a for a in ACTIONS if ACTIONS[a].any_consumer))
def test_process_and_link_actions_take_every_consumer_and_instance(action: str) -> None:
    for target in ACTIONS[action].targets:
        if target in ("consumer", "consumer_broker", "consumer_publisher", "consumer_db"):
            other = {"consumer": "consumer2.i2"}.get(target, target.replace("consumer",
                                                                           "consumer2"))
            step = FaultStep(action, other, at_s=0)
            assert build(step, consumers=TWO, dbs=("postgres",)).faults[0].target == other


@pytest.mark.parametrize("action", sorted(a for a in ACTIONS if not ACTIONS[a].any_consumer
                                          and "consumer" in ACTIONS[a].targets))
def test_actions_on_the_first_consumers_subscription_take_no_other(action: str) -> None:
    error = config_error(FaultStep(action, "consumer2", at_s=0), consumers=TWO)
    assert error.field == "x.faults[0].target"
    assert error.problem == f"{action} cannot target 'consumer2'"
    assert error.fix == "use one of: consumer"


@pytest.mark.parametrize("target", ["consumer2", "consumer2_broker", "consumer.i2",
                                    "consumer3.i2"])
def test_a_target_the_scenario_does_not_have_is_rejected(target: str) -> None:
    error = config_error(FaultStep("stop" if "_" not in target else "link_down", target,
                                   at_s=0))
    assert error.field == "x.faults[0].target"
    assert error.problem == f"this scenario has no {target!r}"
    assert "add a ConsumerSpec to the scenario's consumers" in error.fix
    assert error.fix.endswith("or use one of: " + ("broker, publisher, consumer"
                                                   if "_" not in target else
                                                   "relay_broker, consumer_broker, "
                                                   "consumer_publisher"))


@pytest.mark.parametrize(("action", "target"), [
    ("kill", "relay_broker"), ("latency", "consumer"), ("crash_mid_batch", "broker"),
    ("crash_point:relay.after_commit_before_publish", "consumer")])
def test_action_on_wrong_kind_of_target_is_rejected(action: str, target: str) -> None:
    with pytest.raises(ConfigError, match=r"faults\[0\]\.target") as info:
        build(FaultStep(action, target, at_s=0))
    assert "use one of" in str(info.value)


def test_every_target_is_a_process_or_a_link() -> None:
    targets = {t for a in ACTIONS.values() for t in a.targets}
    assert targets == set(PROCESS_TARGETS) | set(LINK_TARGETS)


def test_unknown_stream_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"faults\[0\]\.stream"):
        build(FaultStep("latency", "relay_broker", at_s=0, stream="sideways"))


def test_catalogue_scenarios_are_valid() -> None:
    catalogue = all_scenarios()
    assert {"steady_state", "consumer_crash"} <= set(catalogue)
    assert all(name == s.name for name, s in catalogue.items())


def test_unknown_action_names_the_path_and_the_choices() -> None:
    error = config_error(FaultStep("kill", "broker", at_s=0),
                         FaultStep("explode", "consumer", at_s=1))
    assert error.field == "x.faults[1].action"
    assert "'explode'" in error.problem
    assert error.fix == f"use one of: {', '.join(sorted(ACTIONS))}"
    assert str(error).startswith("x.faults[1].action: ")


def test_unknown_target_names_the_path_and_the_choices() -> None:
    error = config_error(FaultStep("kill", "database", at_s=0))
    assert error.field == "x.faults[0].target"
    assert "'database'" in error.problem
    assert error.fix == "use one of: broker, publisher, consumer"


@pytest.mark.parametrize("field", ["at_s", "duration_s", "jitter_s"])
def test_negative_times_are_rejected(field: str) -> None:
    values: dict[str, Any] = {"at_s": 1.0, field: -0.5}
    error = config_error(FaultStep("pause", "consumer", **values))
    assert error.field == f"x.faults[0].{field}"
    assert error.problem == "must be >= 0, got -0.5"
    assert "non-negative" in error.fix


def test_unknown_params_are_rejected_with_the_accepted_ones() -> None:
    step = FaultStep("crash_mid_batch", "consumer", at_s=0,
                     params={"delay_s": ParamRange(0, 1), "speed": ParamRange(1, 2)})
    error = config_error(step)
    assert error.field == "x.faults[0].params"
    assert "['speed']" in error.problem
    assert error.fix == "crash_mid_batch accepts: backlog_s, delay_s"


def test_params_on_an_action_without_params() -> None:
    error = config_error(FaultStep("kill", "consumer", at_s=0,
                                   params={"x": ParamRange(0, 1)}))
    assert error.field == "x.faults[0].params"
    assert error.fix == "kill accepts: none"


def test_non_faultstep_entry_is_rejected() -> None:
    error = config_error({"action": "kill", "target": "consumer"})
    assert error.field == "x.faults[0]"
    assert "expected FaultStep, got dict" in error.problem
    assert "FaultStep(action=..., target=...)" in error.fix


@pytest.mark.parametrize("name", ["", "has space", "has-dash", "1starts_with_digit"])
def test_invalid_scenario_name(name: str) -> None:
    error = config_error(name=name)
    assert error.field == "name"
    assert repr(name) in error.problem
    assert "underscores" in error.fix


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf])
def test_converge_timeout_must_be_positive_and_finite(timeout: float) -> None:
    error = config_error(converge_timeout_s=timeout)
    assert error.field == "x.converge_timeout_s"
    assert error.problem == f"must be a finite number > 0, got {timeout!r}"


@pytest.mark.parametrize("settle", [-0.1, math.nan, math.inf])
def test_settle_must_be_finite_and_not_negative(settle: float) -> None:
    error = config_error(settle_s=settle)
    assert error.field == "x.settle_s"
    assert error.problem == f"must be a finite number >= 0, got {settle!r}"


@pytest.mark.parametrize("field", ["at_s", "duration_s", "jitter_s"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_times_must_be_finite(field: str, value: float) -> None:
    values: dict[str, Any] = {"at_s": 1.0, field: value}
    error = config_error(FaultStep("pause", "consumer", **values))
    assert error.field == f"x.faults[0].{field}"
    assert error.problem == f"must be a finite number of seconds, got {value!r}"


def test_a_time_that_is_not_a_number_is_rejected() -> None:
    error = config_error(FaultStep("pause", "consumer", at_s="soon"))  # type: ignore[arg-type]
    assert error.field == "x.faults[0].at_s"
    assert "'soon'" in error.problem


# -- fault parameters -------------------------------------------------------------------


def param_error(action: str, target: str, **params: ParamRange) -> ConfigError:
    return config_error(FaultStep(action, target, at_s=1.0, params=params))


def test_inverted_range_is_rejected_with_the_swapped_fix() -> None:
    error = param_error("crash_mid_batch", "consumer", delay_s=ParamRange(0.5, 0.1))
    assert error.field == "x.faults[0].params.delay_s"
    assert error.problem == "inverted range: low 0.5 > high 0.1"
    assert error.fix == "write ParamRange(0.1, 0.5)"


@pytest.mark.parametrize("bound", [math.nan, math.inf])
def test_range_bounds_must_be_finite(bound: float) -> None:
    error = param_error("latency", "relay_broker", latency=ParamRange(100, bound))
    assert error.field == "x.faults[0].params.latency"
    assert "finite" in error.problem


@pytest.mark.parametrize(("action", "target", "name"), [
    ("latency", "relay_broker", "latency"),
    ("latency", "consumer_broker", "jitter"),
    ("slicer", "relay_broker", "delay"),
    ("slicer", "relay_broker", "size_variation"),
    ("timeout", "consumer_broker", "timeout"),
    ("limit_data", "relay_broker", "bytes"),
    ("crash_mid_batch", "consumer", "backlog_s"),
])
def test_negative_fault_parameters_are_rejected(action: str, target: str, name: str) -> None:
    error = param_error(action, target, **{name: ParamRange(-10, 5)})
    assert error.field == f"x.faults[0].params.{name}"
    assert error.problem == "must be >= 0, got low -10"


@pytest.mark.parametrize(("action", "target", "name"), [
    ("duplicate", "consumer", "copies"),
    ("duplicate", "consumer", "events"),
    ("poison", "consumer", "per_kind"),
    ("relay_drop", "publisher", "count"),
    ("relay_corrupt", "publisher", "count"),
    ("crash_point:consumer.before_commit", "consumer", "after_hits"),
])
@pytest.mark.parametrize("low", [0, -1, 0.5])
def test_counts_need_at_least_one(action: str, target: str, name: str, low: float) -> None:
    error = param_error(action, target, **{name: ParamRange(low, 3)})
    assert error.field == f"x.faults[0].params.{name}"
    assert error.problem == f"must be at least 1, got low {low}"


@pytest.mark.parametrize(("action", "name"), [("bandwidth", "rate"),
                                              ("slicer", "average_size")])
def test_rates_and_sizes_must_be_positive(action: str, name: str) -> None:
    error = param_error(action, "relay_broker", **{name: ParamRange(0, 0)})
    assert error.problem == "must be > 0, got low 0"


def test_toxicity_is_a_share() -> None:
    error = param_error("latency", "relay_broker", toxicity=ParamRange(0.5, 1.5))
    assert error.field == "x.faults[0].params.toxicity"
    assert error.problem == "must lie in [0, 1], got high 1.5"


# -- consumers ------------------------------------------------------------------------------

LATE = ConsumerSpec("orders3", join_at_s=5.0, initial_sync=True)


def test_one_consumer_named_orders_by_default() -> None:
    scenario = build()
    assert scenario.consumers == (ConsumerSpec("orders", 0.0, False, 1),)
    assert list(scenario.by_key) == ["consumer"]
    assert scenario.targets == ("broker", "publisher", "relay_broker", "consumer",
                                "consumer_broker", "consumer_publisher")


@pytest.mark.parametrize("target", ["consumer_db", "consumer2_db"])
def test_a_database_link_needs_a_scenario_on_postgres_only(target: str) -> None:
    error = config_error(FaultStep("link_down", target, at_s=0), consumers=TWO)
    assert error.field == "x.faults[0].target"
    assert error.problem == (f"{target} is a consumer's connection to its PostgreSQL "
                             "database; on SQLite (a file) there is none")
    assert error.fix == "give the scenario dbs=('postgres',)"
    on_postgres = build(FaultStep("link_down", target, at_s=0), consumers=TWO,
                        dbs=("postgres",))
    assert on_postgres.targets == (
        "broker", "publisher", "relay_broker",
        "consumer", "consumer_broker", "consumer_publisher", "consumer_db",
        "consumer2", "consumer2.i2", "consumer2_broker", "consumer2_publisher",
        "consumer2_db")


def test_keys_and_targets_of_several_consumers_and_instances() -> None:
    scenario = build(consumers=(*TWO, LATE))
    assert {k: s.name for k, s in scenario.by_key.items()} == {
        "consumer": "orders", "consumer2": "orders2", "consumer3": "orders3"}
    assert scenario.targets[3:] == (
        "consumer", "consumer_broker", "consumer_publisher",
        "consumer2", "consumer2.i2", "consumer2_broker", "consumer2_publisher",
        "consumer3", "consumer3_broker", "consumer3_publisher")


@pytest.mark.parametrize("target", ["consumer3", "consumer3_broker", "consumer3_publisher"])
@pytest.mark.parametrize("at_s", [0.0, 2.0, 5.0])
def test_no_fault_on_a_consumer_before_it_joins(target: str, at_s: float) -> None:
    action = "stop" if target == "consumer3" else "link_down"
    error = config_error(FaultStep(action, target, at_s=at_s), consumers=(*TWO, LATE))
    assert error.field == "x.faults[0].at_s"
    assert error.problem == (f"{target} is faulted at {at_s}s, but consumer3 only joins at "
                             "5.0s")
    assert error.fix == "schedule the fault after 5.0s, or let consumer3 join earlier"


def test_fault_on_a_consumer_after_it_joins_is_accepted() -> None:
    scenario = build(FaultStep("stop", "consumer2", at_s=5.5),
                     FaultStep("stop", "consumer", at_s=1.0),
                     consumers=(ConsumerSpec(), ConsumerSpec("orders2", 5.0, True)))
    assert len(scenario.faults) == 2


@pytest.mark.parametrize("join", [math.nan, math.inf])
def test_join_time_must_be_finite(join: float) -> None:
    error = config_error(consumers=(ConsumerSpec(), ConsumerSpec("b", join_at_s=join,
                                                                 initial_sync=True)))
    assert error.field == "x.consumers[1].join_at_s"
    assert "finite" in error.problem


@pytest.mark.parametrize(("spec", "field", "problem", "fix"), [
    (ConsumerSpec("b", join_at_s=-1.0), "join_at_s", "must be >= 0",
     "give 0 to start with the others, or the seconds into the load"),
    (ConsumerSpec("b", join_at_s=2.0), "initial_sync",
     "a consumer joining late never receives the events published before its queue existed",
     "give initial_sync=True"),
    (ConsumerSpec("b", instances=0), "instances", "must be a whole number >= 1, got 0",
     "give how many processes share this consumer's name"),
    (ConsumerSpec("b", instances=True), "instances",
     "must be a whole number >= 1, got True",
     "give how many processes share this consumer's name"),
    (ConsumerSpec("b", instances=1.5), "instances",  # type: ignore[arg-type]
     "must be a whole number >= 1, got 1.5",
     "give how many processes share this consumer's name"),
    (ConsumerSpec("b", instances=2, initial_sync=True), "instances",
     "a consumer with initial_sync runs one instance: a full resync is not safe against "
     "another process's batches", "give instances=1, or initial_sync=False"),
    (ConsumerSpec("Orders 2"), "name", "'Orders 2' is not a consumer name",
     "use lowercase letters, digits, '_' and '-', e.g. 'orders2'"),
    (ConsumerSpec("orders"), "name", "'orders' is also consumers[0]'s name",
     "give each consumer its own name; for processes sharing one, set instances="),
])
def test_a_consumer_spec_is_validated(spec: ConsumerSpec, field: str, problem: str,
                                      fix: str) -> None:
    error = config_error(consumers=(ConsumerSpec(), spec))
    assert (error.field, error.problem, error.fix) == (f"x.consumers[1].{field}", problem,
                                                       fix)


@pytest.mark.parametrize("consumers", [(), [ConsumerSpec()]])
def test_consumers_is_a_non_empty_tuple(consumers: Any) -> None:
    error = config_error(consumers=consumers)
    assert error.field == "x.consumers"
    assert error.fix == "give consumers=(ConsumerSpec(),) for the one default consumer"


def test_a_consumers_entry_must_be_a_consumer_spec() -> None:
    error = config_error(consumers=(ConsumerSpec(), {"name": "b"}))
    assert error.field == "x.consumers[1]"
    assert error.problem == "expected ConsumerSpec, got dict"


def test_the_first_consumer_starts_with_the_system() -> None:
    error = config_error(consumers=(ConsumerSpec(join_at_s=3.0, initial_sync=True),))
    assert error.field == "x.consumers[0].join_at_s"
    assert error.fix == "give it join_at_s=0, and let a later consumer join late"


def test_a_repair_needs_a_single_first_consumer() -> None:
    error = config_error(repair=Repair("partial"), consumers=(ConsumerSpec(instances=2),))
    assert error.field == "x.repair"
    assert error.fix == "give the first consumer instances=1"


@pytest.mark.parametrize("action", ["broker_data_loss", "full_resync_with_loss",
                                    "consumer_bug"])
def test_one_process_actions_are_refused_on_several_instances(action: str) -> None:
    error = config_error(FaultStep(action, "consumer", at_s=1.0),
                         consumers=(ConsumerSpec(instances=3),))
    assert error.field == "x.faults[0].action"
    assert error.problem == (f"{action} acts on consumer's first process alone, while its "
                             "2 other instance(s) keep consuming")
    assert error.fix == "give consumer instances=1, or use kill, stop or pause on one instance"


def test_scenario_is_frozen() -> None:
    scenario = build()
    with pytest.raises(AttributeError):
        scenario.name = "y"  # type: ignore[misc]


def test_plain_number_param_is_rejected_at_validation() -> None:
    with pytest.raises(ConfigError, match=r"faults\[0\]\.params"):
        # A plain number where a ParamRange belongs: what an untyped scenario file would do.
        build(FaultStep("crash_mid_batch", "consumer", at_s=0,
                        params={"delay_s": 0.01}))  # type: ignore[dict-item]


# -- resolve --------------------------------------------------------------------------------


def test_param_range_draw() -> None:
    scenario = build()
    assert ParamRange(0.3, 0.3).draw(scenario.rng(1)) == 0.3
    rng = scenario.rng(1)
    values = [ParamRange(1.0, 2.0).draw(rng) for _ in range(50)]
    assert all(1.0 <= v <= 2.0 for v in values)
    assert len(set(values)) > 1


def _crash_step() -> FaultStep:
    return FaultStep("crash_mid_batch", "consumer", at_s=1.5, jitter_s=0.5)


def test_resolve_is_deterministic_for_the_same_seed() -> None:
    scenario = build(_crash_step())
    first = [scenario.faults[0].resolve(scenario.rng(42)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    again = build(_crash_step())
    assert again.faults[0].resolve(again.rng(42)) == first[0]


def test_resolve_differs_across_seeds() -> None:
    scenario = build(_crash_step())
    results = {scenario.faults[0].resolve(scenario.rng(seed))[0] for seed in range(10)}
    assert len(results) == 10


def test_resolve_stays_within_ranges_and_uses_defaults() -> None:
    scenario = build(_crash_step())
    defaults = ACTIONS["crash_mid_batch"].params
    for seed in range(30):
        at, params = scenario.faults[0].resolve(scenario.rng(seed))
        assert 1.5 <= at <= 2.0
        assert set(params) == {"backlog_s", "delay_s"}
        for name, value in params.items():
            assert defaults[name].low <= value <= defaults[name].high


def test_resolve_without_jitter_or_params_is_exact() -> None:
    scenario = build(FaultStep("kill", "consumer", at_s=3.0))
    assert scenario.faults[0].resolve(scenario.rng(1)) == (3.0, {})


def test_resolve_applies_param_overrides() -> None:
    step = FaultStep("crash_mid_batch", "consumer", at_s=0,
                     params={"delay_s": ParamRange(0.5, 0.5)})
    scenario = build(step)
    _, params = scenario.faults[0].resolve(scenario.rng(7))
    assert params["delay_s"] == 0.5
    assert 0.6 <= params["backlog_s"] <= 1.2


def test_rng_stream_depends_on_seed_and_scenario_name() -> None:
    a, b = build(name="a"), build(name="b")
    assert a.rng(5).random() == a.rng(5).random()
    assert a.rng(5).random() != a.rng(6).random()
    assert a.rng(5).random() != b.rng(5).random()


def test_repair_kinds_are_validated() -> None:
    from harness.scenario import Repair

    Scenario(name="r", description="d", repair=Repair("auto"))
    with pytest.raises(ConfigError, match=r"r\.repair\.resync") as info:
        Scenario(name="r", description="d", repair=Repair("sometimes"))
    assert "'partial', 'full' or 'auto'" in str(info.value)


# -- workload -------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [
    ("rate_per_s", math.nan), ("rate_per_s", math.inf), ("rate_per_s", 0),
    ("duration_s", math.nan), ("duration_s", math.inf), ("duration_s", -1),
    ("initial_products", -1), ("initial_products", 2.5), ("initial_products", True),
])
def test_workload_rejects_non_finite_or_out_of_range_numbers(field: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        WorkloadSpec(**{field: value})
    assert info.value.field == f"workload.{field}"


@pytest.mark.parametrize("weight", [math.nan, math.inf])
def test_workload_mix_weights_must_be_finite(weight: float) -> None:
    with pytest.raises(ConfigError) as info:
        WorkloadSpec(mix=(("update", weight), ("stock", 1.0)))
    assert info.value.field == "workload.mix"
    assert info.value.problem == "weights must be finite numbers"


def test_workload_without_initial_products_is_valid_when_it_creates() -> None:
    assert WorkloadSpec(initial_products=0).max_ops == 1600
