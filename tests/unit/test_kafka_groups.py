"""Consumer groups on Kafka: scenarios that need a partitioned log say so and are not
applicable on RabbitMQ (never silently passed), bug variants exist per broker with their
catching scenarios per broker, and the offset-reset fault's evidence is the consumer's own
report of the loss."""

from __future__ import annotations

from typing import Any

import pytest

from harness import cli
from harness.brokers import capabilities as caps
from harness.brokers.registry import BROKERS, broker_plugin
from harness.contract.client import ServiceCallError
from harness.errors import ConfigError
from harness.faults import log_position
from harness.faults.base import Evidence, Fault
from harness.faults.log_position import PositionBeforeLog
from harness.faults.publisher import DataLossWhileDown
from harness.runtime.base import Component, Endpoint
from harness.scenario import FaultStep, Scenario
from harness.session import load_catalogue
from harness.settings import RunSettings
from harness.variants import VARIANTS, Variant, resolve_variant

KAFKA_ONLY_SCENARIOS = ("group_rebalance", "offset_reset")


# -- capability-based applicability -------------------------------------------------------


def test_a_scenario_requirement_counts_as_a_need_and_is_named() -> None:
    scenario = Scenario("s", "x", requires=frozenset({caps.CONSUMER_GROUPS}),
                        faults=(FaultStep("kill", "consumer", 1.0),))
    assert scenario.needs == {caps.CONSUMER_GROUPS}
    reason = scenario.not_applicable_on(caps.ALL)
    assert caps.CONSUMER_GROUPS in reason and "does not have" in reason
    assert "kill" not in reason  # its faults need nothing the broker lacks
    assert scenario.not_applicable_on(caps.ALL | {caps.CONSUMER_GROUPS}) == ""


def test_a_requirement_and_a_fault_need_are_both_named() -> None:
    scenario = Scenario("s", "x", requires=frozenset({caps.CONSUMER_GROUPS}),
                        faults=(FaultStep("reorder", "consumer", 1.0, 1.0),))
    reason = scenario.not_applicable_on(frozenset())
    assert caps.CONSUMER_GROUPS in reason
    assert "reorder" in reason and caps.HOLD_AND_RELEASE in reason


def test_an_unknown_requirement_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="requires"):
        Scenario("s", "x", requires=frozenset({"teleport"}))


def test_only_kafka_has_consumer_groups() -> None:
    assert caps.CONSUMER_GROUPS in broker_plugin("kafka").capabilities
    assert caps.CONSUMER_GROUPS not in broker_plugin("rabbitmq").capabilities


@pytest.mark.parametrize("name", KAFKA_ONLY_SCENARIOS)
def test_kafka_only_scenarios_are_not_applicable_on_rabbitmq(name: str) -> None:
    scenario = load_catalogue()[name]
    assert caps.CONSUMER_GROUPS in scenario.not_applicable_on(
        broker_plugin("rabbitmq").capabilities)
    assert scenario.not_applicable_on(broker_plugin("kafka").capabilities) == ""


def test_group_rebalance_kills_one_of_two_instances_for_longer_than_a_session() -> None:
    scenario = load_catalogue()["group_rebalance"]
    assert scenario.consumers[0].instances == 2
    (kill,) = scenario.faults
    assert (kill.action, kill.target) == ("kill", "consumer.i2")
    assert kill.duration_s > 6.0  # the group's session.timeout.ms: partitions move first


def test_list_for_rabbitmq_names_the_kafka_only_scenarios_with_the_reason(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list", "--broker", "rabbitmq"]) == 0
    out = capsys.readouterr().out
    runnable, _, rest = out.partition("not applicable on rabbitmq:")
    for name in KAFKA_ONLY_SCENARIOS:
        assert name not in runnable
        line = next(line for line in rest.splitlines() if line.strip().startswith(name))
        assert caps.CONSUMER_GROUPS in line


# -- variants per broker --------------------------------------------------------------------


def test_a_variant_is_caught_per_broker() -> None:
    variant = Variant("v", "consumer", "bug", {"rabbitmq": ("a",), "kafka": ("b", "c")})
    assert variant.brokers == ("rabbitmq", "kafka")
    assert variant.caught_by("rabbitmq") == ("a",)
    assert variant.caught_by("kafka") == ("b", "c")
    assert variant.caught_by("zeromq") == ()


@pytest.mark.parametrize(("name", "broker", "scenarios"), [
    ("autocommit_offsets", "kafka", ("consumer_crash",)),
    ("offset_reset_latest", "kafka", ("group_rebalance", "consumer_down_long", "offset_reset")),
    ("ack_before_commit", "rabbitmq", ("consumer_crash", "network_faults_consumer_db")),
])
def test_broker_specific_variants_and_their_catchers(
        name: str, broker: str, scenarios: tuple[str, ...]) -> None:
    assert VARIANTS[name].brokers == (broker,)
    assert VARIANTS[name].caught_by(broker) == scenarios


def test_every_variant_exists_on_a_known_broker_and_its_catchers_run_there() -> None:
    catalogue = load_catalogue()
    for variant in VARIANTS.values():
        assert variant.brokers and set(variant.brokers) <= set(BROKERS), variant.name
        assert variant.caught_by("rabbitmq") or variant.caught_by("kafka"), variant.name
        for broker in variant.brokers:
            offered = broker_plugin(broker).capabilities
            for name in variant.caught_by(broker):
                assert name in catalogue, f"{variant.name}: no scenario {name}"
                assert not catalogue[name].not_applicable_on(offered), \
                    f"{variant.name}: {name} cannot run on {broker}"


@pytest.mark.parametrize(("name", "broker", "elsewhere"), [
    ("autocommit_offsets", "rabbitmq", "kafka"),
    ("offset_reset_latest", "rabbitmq", "kafka"),
    ("ack_before_commit", "kafka", "rabbitmq"),
])
def test_a_variant_on_a_broker_it_does_not_exist_on_is_a_config_error(
        name: str, broker: str, elsewhere: str) -> None:
    with pytest.raises(ConfigError) as info:
        RunSettings(seed=1, broker=broker, variant=name)
    error = info.value
    assert error.field == "--variant"
    assert name in error.problem and broker in error.problem and elsewhere in error.problem
    assert f"--broker {elsewhere}" in error.fix


def test_variants_that_exist_on_a_broker_resolve_there() -> None:
    assert resolve_variant("autocommit_offsets", "kafka") is VARIANTS["autocommit_offsets"]
    assert resolve_variant("truncate_names", "kafka") is VARIANTS["truncate_names"]
    assert resolve_variant("truncate_names", "rabbitmq") is VARIANTS["truncate_names"]
    assert resolve_variant("none", "kafka") is None
    assert RunSettings(seed=1, broker="kafka", variant="offset_reset_latest") \
        .variant_for("consumer") == "offset_reset_latest"


# -- the offset-reset fault's evidence ------------------------------------------------------


class Process(Component):
    """A component that only records whether it runs."""

    def __init__(self) -> None:
        self.name = "consumer"
        self.running = True

    def start(self) -> None:
        self.running = True

    def stop(self, timeout_s: float = 10.0) -> None:
        self.running = False

    def kill(self) -> int | None:
        self.running = False
        return -9

    def pause(self) -> None:
        """Not used here."""

    def resume(self) -> None:
        """Not used here."""

    def is_running(self) -> bool:
        return self.running

    def logs(self, tail_lines: int = 40) -> str:
        return ""

    def endpoint(self, port_name: str = "main") -> Endpoint:
        return Endpoint("127.0.0.1", 1)

    @property
    def identity(self) -> str:
        return "fake consumer"


class Purge(Fault):
    name = "broker_data_loss:purge:orders"

    def __init__(self, destroyed: int) -> None:
        self.destroyed = destroyed

    def inject(self) -> None:
        """Nothing to do: the count is given."""

    def heal(self) -> None:
        """Lost data stays lost."""

    def evidence(self) -> Evidence:
        return Evidence(self.destroyed > 0, f"{self.destroyed} records lost")


def _fault(monkeypatch: pytest.MonkeyPatch, answers: list[dict[str, Any] | None],
           destroyed: int = 120) -> PositionBeforeLog:
    """The fault over a consumer whose /health gives `answers` in turn (None: not
    answering yet), the last one from then on."""

    class Client:
        def __init__(self, _url: str) -> None:
            pass

        def health(self) -> dict[str, Any]:
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
            if answer is None:
                raise ServiceCallError("connection refused")
            return answer

    monkeypatch.setattr(log_position, "ConsumerClient", Client)
    consumer = Process()
    return PositionBeforeLog(consumer, DataLossWhileDown(consumer, Purge(destroyed), 0.0),
                             detect_timeout_s=1.0)


LOSS = {"topic": "product-events", "partition": 2, "kind": "log_truncated",
        "detail": "the log now starts at offset 90", "at": 1.0}


def test_evidence_is_the_consumer_reporting_the_loss_after_its_restart(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fault = _fault(monkeypatch, [None, {"worker": {"data_loss": []}},
                                 {"worker": {"data_loss": [LOSS]}}])
    fault.inject()
    assert not fault.consumer.is_running()
    fault.heal()
    evidence = fault.evidence()
    assert evidence.verified
    assert "log_truncated" in evidence.description and "partition(s) 2" in evidence.description
    assert fault.details() == {"data_loss_reported": [LOSS]}


def test_a_consumer_that_never_reports_the_loss_leaves_the_fault_unverified(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fault = _fault(monkeypatch, [{"worker": {"data_loss": []}}])
    fault.inject()
    fault.heal()
    evidence = fault.evidence()
    assert not evidence.verified
    assert "reported no data loss" in evidence.description


def test_nothing_lost_leaves_the_fault_unverified(monkeypatch: pytest.MonkeyPatch) -> None:
    fault = _fault(monkeypatch, [{"worker": {"data_loss": [LOSS]}}], destroyed=0)
    fault.inject()
    fault.heal()
    assert not fault.evidence().verified
