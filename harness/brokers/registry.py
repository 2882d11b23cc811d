"""Brokers by name: what `--broker` resolves through. A plugin knows how to start its
broker on a runtime, how services address it, and what its adapter can do; the system
under test never asks which broker it has.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote

from harness.brokers.base import BrokerAdapter
from harness.brokers.kafka import KafkaAdapter
from harness.brokers.rabbitmq import RabbitCtl, RabbitMQAdapter
from harness.errors import BrokerError, ConfigError
from harness.runtime.base import Component, Endpoint, Runtime
from harness.runtime.processes import ProcessRuntime
from harness.runtime.rabbitmq_node import RabbitMQNode
from harness.runtime.tansu_node import TansuNode


@dataclass(frozen=True)
class StartedBroker:
    component: Component  # the broker itself: what process faults act on
    adapter: BrokerAdapter  # the harness's own client of it


@dataclass(frozen=True)
class BrokerLease:
    """A running broker lent to one run (see harness/brokers/kept.py): `started` as the run
    sees it (the broker's own component, so process faults act on it, and an adapter
    scoped to the run's `namespace`), the URL a service is given to reach that namespace at
    an endpoint, and `close`, which removes the namespace with everything in it."""

    started: StartedBroker
    namespace: str
    service_url: Callable[[Endpoint], str]
    close: Callable[[], None]


@dataclass(frozen=True)
class BrokerPlugin:
    name: str
    description: str
    capabilities: frozenset[str]
    # Starts the broker as the runtime's component `name` and connects an adapter to it.
    start: Callable[[Runtime, str], StartedBroker]
    # The URL a service is given to reach the broker at an endpoint (e.g. a proxy link).
    service_url: Callable[[Endpoint], str]
    # What sits between a client's fault-proxy link and the broker, if anything, given the
    # runtime, the broker (as started), the link's name and the address the link listens
    # on (chosen before the link exists): a component, not yet started, that the link
    # forwards to; it is started once the link exists. None: the link goes to the broker.
    link_hop: Callable[[Runtime, Component, str, Endpoint], Component | None] = (
        lambda _runtime, _broker, _link, _listen: None)
    # Makes namespaces in a running broker, one per name, each for one run: nothing a run
    # declares or publishes in its own is seen outside it. None: the broker has no such
    # thing, so every run starts a broker of its own.
    lend: Callable[[StartedBroker, Sequence[str]], list[BrokerLease]] | None = None


def _start_rabbitmq(runtime: Runtime, name: str) -> StartedBroker:
    node = runtime.rabbitmq(name)
    node.start()
    if not isinstance(node, RabbitMQNode):
        raise ConfigError("--runtime", f"{type(runtime).__name__} gave no local RabbitMQ node",
                          "run this broker with --runtime processes")
    ctl = RabbitCtl(node.nodename, node.rabbitmqctl)
    return StartedBroker(node, RabbitMQAdapter(node.amqp_url, ctl))


def amqp_url(endpoint: Endpoint, vhost: str = "/") -> str:
    return f"amqp://guest:guest@{endpoint.address}/{quote(vhost, safe='')}"


def _lend_vhosts(broker: StartedBroker, vhosts: Sequence[str]) -> list[BrokerLease]:
    """RabbitMQ virtual hosts: each has its own exchanges, queues and bindings, so a run
    sees only what it declared itself, and deleting it deletes them all. Made in one
    `rabbitmqctl import_definitions` (with guest's permissions): about 0.5 s for ten,
    where adding one and granting it takes two calls of 0.25 s each."""
    adapter = broker.adapter
    if not isinstance(adapter, RabbitMQAdapter) or adapter.ctl is None:
        raise ConfigError("--broker", "a virtual host needs a RabbitMQ node rabbitmqctl "
                          "reaches", "start the broker through the rabbitmq plugin")
    ctl = adapter.ctl
    definitions = {
        "vhosts": [{"name": vhost} for vhost in vhosts],
        "permissions": [{"user": "guest", "vhost": vhost, "configure": ".*", "write": ".*",
                         "read": ".*"} for vhost in vhosts]}
    # On standard input, not in a file: the tool may run in the broker's container,
    # which sees none of the host's temporary files.
    ctl.run("import_definitions", stdin=json.dumps(definitions))
    return [_vhost_lease(broker, replace(ctl, vhost=vhost)) for vhost in vhosts]


def _vhost_lease(broker: StartedBroker, ctl: RabbitCtl) -> BrokerLease:
    vhost = ctl.vhost
    scoped = RabbitMQAdapter(amqp_url(broker.component.endpoint(), vhost), ctl)

    def close() -> None:
        scoped.close()
        # A broker left down by a failed heal keeps the host until the broker goes; the
        # next run gets a host of its own anyway.
        with contextlib.suppress(BrokerError):
            ctl.run("delete_vhost", vhost)

    return BrokerLease(StartedBroker(broker.component, scoped), vhost,
                       lambda endpoint: amqp_url(endpoint, vhost), close)


def _process_runtime(runtime: Runtime) -> ProcessRuntime:
    if not isinstance(runtime, ProcessRuntime):
        raise ConfigError("--runtime", f"{type(runtime).__name__} cannot run a Tansu broker",
                          "run this broker with --runtime processes")
    return runtime


def _start_kafka(runtime: Runtime, name: str) -> StartedBroker:
    # On S3 storage: a broker stopped, killed or frozen keeps its log, as a real Kafka
    # broker's disk does, and the harness can make it lose one topic's records.
    node = _process_runtime(runtime).kafka(name, storage="s3")
    node.start()
    # The harness's own client talks to the broker directly (it advertises its own
    # listener); every service reaches it through its link and a proxy (_kafka_link_hop).
    return StartedBroker(node, KafkaAdapter(node.bootstrap, truncator=node))


def _kafka_link_hop(runtime: Runtime, broker: Component, link: str,
                    listen: Endpoint) -> Component:
    """A `tansu proxy` advertising the link's listen address: the broker advertises only
    itself, and a client follows what it is told, so without it every client would leave
    its link after the first metadata answer. The broker restarts it with itself (see
    TansuNode.front)."""
    if not isinstance(broker, TansuNode):
        raise ConfigError("--broker", f"a Kafka link needs a Tansu broker, not {broker.name}",
                          "start the broker through the kafka plugin")
    # Origin: the broker as a component dials it. Advertised: the link as the harness
    # dials it, which every client can dial too (TansuProxy).
    proxy = _process_runtime(runtime).tansu_proxy(f"tansu-proxy-{link}",
                                                  broker.endpoint().inside, listen)
    broker.front(proxy)
    return proxy


def kafka_url(endpoint: Endpoint) -> str:
    return f"kafka://{endpoint.address}"


BROKERS: dict[str, BrokerPlugin] = {
    plugin.name: plugin
    for plugin in (
        BrokerPlugin("rabbitmq", "RabbitMQ, a private node per scenario (pika)",
                     RabbitMQAdapter.capabilities, _start_rabbitmq, amqp_url,
                     lend=_lend_vhosts),
        BrokerPlugin("kafka", "Kafka protocol: a Tansu broker on local S3 storage per "
                     "scenario, a `tansu proxy` per link (confluent-kafka)",
                     KafkaAdapter.capabilities, _start_kafka, kafka_url, _kafka_link_hop),
    )
}


def broker_plugin(name: str) -> BrokerPlugin:
    if name not in BROKERS:
        raise ConfigError("--broker", f"unsupported broker {name!r}",
                          f"use one of: {', '.join(BROKERS)}")
    return BROKERS[name]
