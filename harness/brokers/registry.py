"""Brokers by name: what `--broker` resolves through. A plugin knows how to start its
broker on a runtime, how services address it, and what its adapter can do; the system
under test never asks which broker it has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.brokers.base import BrokerAdapter
from harness.brokers.rabbitmq import RabbitCtl, RabbitMQAdapter
from harness.errors import ConfigError
from harness.runtime.base import Component, Endpoint, Runtime
from harness.runtime.rabbitmq_node import RABBITMQ_SERVER, RabbitMQNode


@dataclass(frozen=True)
class StartedBroker:
    component: Component  # the broker itself: what process faults act on
    adapter: BrokerAdapter  # the harness's own client of it


@dataclass(frozen=True)
class BrokerPlugin:
    name: str
    description: str
    capabilities: frozenset[str]
    # Starts the broker as the runtime's component `name` and connects an adapter to it.
    start: Callable[[Runtime, str], StartedBroker]
    # The URL a service is given to reach the broker at an endpoint (e.g. a proxy link).
    service_url: Callable[[Endpoint], str]


def _start_rabbitmq(runtime: Runtime, name: str) -> StartedBroker:
    node = runtime.rabbitmq(name)
    node.start()
    if not isinstance(node, RabbitMQNode):
        raise ConfigError("--runtime", f"{type(runtime).__name__} gave no local RabbitMQ node",
                          "run this broker with --runtime processes")
    ctl = RabbitCtl(RABBITMQ_SERVER.with_name("rabbitmqctl"), node.nodename, node.ctl_env)
    return StartedBroker(node, RabbitMQAdapter(node.amqp_url, ctl))


def amqp_url(endpoint: Endpoint) -> str:
    return f"amqp://guest:guest@{endpoint.address}/%2F"


BROKERS: dict[str, BrokerPlugin] = {
    plugin.name: plugin
    for plugin in (
        BrokerPlugin("rabbitmq", "RabbitMQ, a private node per scenario (pika)",
                     RabbitMQAdapter.capabilities, _start_rabbitmq, amqp_url),
    )
}


def broker_plugin(name: str) -> BrokerPlugin:
    if name not in BROKERS:
        raise ConfigError("--broker", f"unsupported broker {name!r}",
                          f"use one of: {', '.join(BROKERS)}")
    return BROKERS[name]
