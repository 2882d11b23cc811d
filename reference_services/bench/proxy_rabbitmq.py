"""`harness bench proxy`: what the fault proxy costs on RabbitMQ.

In one run, against one private RabbitMQ node, with the proxy carrying no toxic:
- confirmed throughput (path `amqp-confirmed`): publish N persistent messages with batched
  publisher confirms, as the relay does, then consume them with prefetch and multiple-acks;
  messages per second, direct vs through the proxy. The broker's disk writes and the
  confirm waits bound this rate, which hides most of the proxy's cost;
- fast throughput (path `amqp-fast`): the same, but transient messages published without
  confirms, so the broker and the connections, not the disk, set the pace;
- added latency: p50 of an AMQP round trip (a passive queue.declare RPC), proxy - direct.
Repeats alternate direct and proxied runs so drift hits both alike; medians are reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pika

from harness.links import Links
from harness.runtime.base import Endpoint
from harness.runtime.processes import ProcessRuntime
from harness.runtime.rabbitmq_node import RabbitMQNode
from reference_services.common import rabbitmq as topology
from reference_services.publisher.confirming_publisher import (
    ConfirmingPublisher,
    OutgoingMessage,
)

BENCH_QUEUE = "bench.product-events"


AMQP_PATHS = ("amqp-fast", "amqp-confirmed")


@dataclass(frozen=True)
class Throughput:
    """Publish + consume rate of one path, medians over the rounds."""

    direct_msgs_per_s: float
    proxied_msgs_per_s: float
    throughput_ratio: float


@dataclass(frozen=True)
class ProxyBench:
    messages: int
    repeats: int
    throughput: dict[str, Throughput]  # by path, of those measured
    direct_rtt_p50_ms: float
    proxied_rtt_p50_ms: float
    added_p50_ms: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _url(endpoint: Endpoint) -> str:
    return f"amqp://guest:guest@{endpoint.address}/%2F"


BODY = b"x" * 300  # about the size of a product event


class _ConfirmedPublisher:
    """Persistent messages in batches, each batch waiting for its confirms (the relay)."""

    def __init__(self, url: str, batch: int = 1000) -> None:
        self._publisher = ConfirmingPublisher(url)
        self._publisher.connect()
        self._batch = batch

    def publish(self, messages: int) -> None:
        for start in range(0, messages, self._batch):
            self._publisher.publish_batch(
                [OutgoingMessage(topology.routing_key(str(i)), BODY, str(i))
                 for i in range(start, min(messages, start + self._batch))])

    def close(self) -> None:
        self._publisher.close()


class _FastPublisher:
    """Transient messages, no confirms: nothing waits for the disk or the broker."""

    def __init__(self, url: str) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()

    def publish(self, messages: int) -> None:
        transient = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Transient)
        for i in range(messages):
            self._channel.basic_publish(topology.EXCHANGE, topology.routing_key(str(i)), BODY,
                                        transient)

    def close(self) -> None:
        self._connection.close()


def _pump(url: str, messages: int, path: str) -> float:
    """Publish then drain `messages` on `path`; returns messages per second for the round
    (connections are opened before the clock starts)."""
    publisher = _FastPublisher(url) if path == "amqp-fast" else _ConfirmedPublisher(url)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=1000)
    began = time.perf_counter()
    try:
        publisher.publish(messages)
        received = 0
        deadline = time.monotonic() + 120
        for method, _props, _body in channel.consume(BENCH_QUEUE, inactivity_timeout=1.0):
            if method is None:
                if time.monotonic() > deadline:
                    break
                continue
            received += 1
            if received % 500 == 0 or received == messages:
                channel.basic_ack(method.delivery_tag, multiple=True)
            if received == messages:
                break
        elapsed = time.perf_counter() - began
        channel.cancel()
    finally:
        publisher.close()
        connection.close()
    return received / elapsed


def _rtt_p50_ms(url: str, calls: int = 2000) -> float:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    samples = []
    try:
        for _ in range(calls):
            began = time.perf_counter()
            channel.queue_declare(BENCH_QUEUE, passive=True)
            samples.append((time.perf_counter() - began) * 1000)
    finally:
        connection.close()
    return statistics.median(samples)


def run_proxy_bench(work_dir: Path, messages: int = 20000, repeats: int = 3,
                    paths: tuple[str, ...] = AMQP_PATHS,
                    progress: Callable[[str], None] = print) -> ProxyBench:
    runtime = ProcessRuntime(work_dir)
    try:
        broker = runtime.rabbitmq("broker")
        assert isinstance(broker, RabbitMQNode)
        progress("starting a private RabbitMQ node and the fault proxy")
        broker.start()
        proxy = runtime.fault_proxy(seed=0)
        proxy.start()
        links = Links(proxy.endpoint())
        proxied = links.create("bench_broker", broker.endpoint())
        direct_url, proxied_url = broker.amqp_url, _url(proxied)
        setup = pika.BlockingConnection(pika.URLParameters(direct_url))
        channel = setup.channel()
        topology.declare_exchange(channel)
        channel.queue_declare(BENCH_QUEUE, durable=True)
        channel.queue_bind(BENCH_QUEUE, topology.EXCHANGE, routing_key="products.#")
        setup.close()
        for path in paths:  # warm-up: first runs pay for cold caches and queue creation
            _pump(direct_url, 2000, path)
        rates: dict[tuple[str, str], list[float]] = {
            (path, kind): [] for path in paths for kind in ("direct", "proxied")}
        rtts: dict[str, list[float]] = {"direct": [], "proxied": []}
        for round_no in range(1, repeats + 1):
            for kind, url in (("direct", direct_url), ("proxied", proxied_url)):
                for path in paths:
                    rates[path, kind].append(_pump(url, messages, path))
                rtts[kind].append(_rtt_p50_ms(url))
                rounds = ", ".join(f"{path} {rates[path, kind][-1]:.0f} msg/s" for path in paths)
                progress(f"round {round_no}/{repeats} {kind:8}: {rounds}, "
                         f"round trip p50 {rtts[kind][-1]:.3f} ms")
    finally:
        runtime.close()
    throughput = {}
    for path in paths:
        direct_rate = statistics.median(rates[path, "direct"])
        proxied_rate = statistics.median(rates[path, "proxied"])
        throughput[path] = Throughput(round(direct_rate, 1), round(proxied_rate, 1),
                                      round(proxied_rate / direct_rate, 3))
    direct_rtt, proxied_rtt = statistics.median(rtts["direct"]), \
        statistics.median(rtts["proxied"])
    return ProxyBench(messages, repeats, throughput, round(direct_rtt, 4),
                      round(proxied_rtt, 4), round(proxied_rtt - direct_rtt, 4))
