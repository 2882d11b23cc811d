"""The Kafka broker plugin: how services address it, what sits in each of their links, and
what its adapter claims to do."""

from __future__ import annotations

from pathlib import Path

from harness.brokers import capabilities as caps
from harness.brokers.kafka import KafkaAdapter
from harness.brokers.rabbitmq import RabbitMQAdapter
from harness.brokers.registry import broker_plugin
from harness.runtime.base import Endpoint
from harness.runtime.processes import ProcessRuntime
from harness.runtime.tansu_proxy import TansuProxy, proxy_argv

BROKER = Endpoint("127.0.0.1", 9092)  # where a proxy's origin is, in argv tests
LISTEN = Endpoint("127.0.0.1", 9100)


def test_services_get_a_kafka_url() -> None:
    assert broker_plugin("kafka").service_url(LISTEN) == "kafka://127.0.0.1:9100"


def test_kafka_offers_only_what_its_checks_judge_correctly() -> None:
    offered = broker_plugin("kafka").capabilities
    assert {caps.LOSE_DATA, caps.INJECT_RAW, caps.DEAD_LETTER} <= offered
    # Nothing can be held back on Kafka.
    assert caps.HOLD_AND_RELEASE not in offered
    # Raw bytes produced to the topic reach every consumer group, the tap's included.
    assert KafkaAdapter.raw_reaches_every_reader
    assert not RabbitMQAdapter.raw_reaches_every_reader


def test_a_rabbitmq_link_goes_straight_to_the_broker(tmp_path: Path) -> None:
    runtime = ProcessRuntime(tmp_path)
    hop = broker_plugin("rabbitmq").link_hop(runtime, runtime.rabbitmq(), "relay_broker",
                                             LISTEN)
    assert hop is None


def test_a_kafka_link_goes_through_a_proxy_advertising_the_link(tmp_path: Path) -> None:
    runtime = ProcessRuntime(tmp_path)
    broker = runtime.kafka("broker")
    hop = broker_plugin("kafka").link_hop(runtime, broker, "consumer_broker", LISTEN)
    assert isinstance(hop, TansuProxy)
    assert hop.name == "tansu-proxy-consumer_broker"
    assert (hop.origin, hop.advertised) == (broker.endpoint(), LISTEN)
    assert hop.endpoint() not in (broker.endpoint(), LISTEN)  # its own port, for the link
    assert not hop.is_running()  # started by the caller, once its link exists
    assert broker.proxies == [hop]  # restarted with the broker
    runtime.close()  # owns it: stopping a never-started proxy is harmless


def test_proxy_argv_names_listener_advertised_and_origin() -> None:
    argv = proxy_argv(Path("/bin/tansu"), "127.0.0.1:1", LISTEN, BROKER)
    assert argv == ["/bin/tansu", "proxy", "--listener-url", "tcp://127.0.0.1:1",
                    "--advertised-listener-url", "tcp://127.0.0.1:9100",
                    "--origin-url", "tcp://127.0.0.1:9092"]

