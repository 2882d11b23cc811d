"""`harness bench proxy --broker kafka`: what the fault proxy's links cost on Kafka.

A Kafka client follows the address the broker advertises, so "through the proxy" is the
whole link as every scenario wires it (harness/brokers/registry.py, link_hop): client ->
fault-proxy link (no toxic) -> a `tansu proxy` advertising that link's address -> the
broker; the producer and the consumer each have their own link, as the relay and a
consumer do. "Direct" is both clients on the broker's own listener. The broker is started
by the kafka plugin, as in every scenario (Tansu on its S3 storage).

In one run, rounds alternate direct and proxied so that drift hits both alike; medians:
- throughput: produce N records (idempotent, acks=all) and consume them all, from the
  first send to the last record read;
- round trip: produce one record and wait for its delivery report (a request the broker
  answers once the record is stored), repeated.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.bench import figures
from harness.bench.clients import KafkaReceiver, KafkaSender
from harness.bench.e2e import encode
from harness.brokers import kafka_client
from harness.brokers.kafka import KafkaAdapter
from harness.brokers.registry import broker_plugin
from harness.contract import naming
from harness.errors import SetupError
from harness.links import Links
from harness.runtime.processes import ProcessRuntime
from harness.runtime.tansu_node import TansuNode

TOPIC = "bench-proxy"
LINKS = ("bench_producer", "bench_consumer")
THROUGHPUT_TARGET = ">= 0.9"
ROUND_TRIPS = 200
ROUND_TRIP_BUDGET_S = 10.0
DRAIN_TIMEOUT_S = 60.0
# The relay's producer lingers 1 ms to fill batches; so does this one for throughput.
LINGER_MS = 1

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Route:
    """Where each client connects: the broker itself, or its own link."""

    name: str
    producer: str
    consumer: str


@dataclass(frozen=True)
class KafkaProxyBench:
    broker_detail: str
    messages: int
    repeats: int
    direct_msgs_per_s: float
    proxied_msgs_per_s: float
    direct_rtt: figures.Percentiles
    proxied_rtt: figures.Percentiles
    comparisons: tuple[figures.Comparison, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["comparisons"] = [c.to_dict() for c in self.comparisons]
        return data


def compare_paths(direct_rate: float, proxied_rate: float, direct_rtt: figures.Percentiles,
                  proxied_rtt: figures.Percentiles) -> tuple[figures.Comparison, ...]:
    return (figures.compare("produce+consume throughput", "msg/s", proxied_rate, direct_rate,
                            THROUGHPUT_TARGET),
            figures.compare("produce round trip p50", "ms", proxied_rtt.p50, direct_rtt.p50),
            figures.compare("produce round trip p99", "ms", proxied_rtt.p99, direct_rtt.p99))


def produce_consume_rate(route: Route, bootstrap: str, messages: int, number: int) -> float:
    """Produce `messages` records and read them all back: records per second."""
    start = {p: b.end for p, b in kafka_client.log_bounds(
        bootstrap, TOPIC, range(naming.EVENTS_PARTITIONS)).items()}
    receiver = KafkaReceiver(route.consumer, f"bench-proxy-{route.name}-{number}", TOPIC, start)
    sender = KafkaSender(route.producer, TOPIC, **{"linger.ms": LINGER_MS})
    received = 0
    try:
        began = time.perf_counter()
        for sequence in range(messages):
            sender.send(encode(sequence, 0.0))
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while received < messages and time.monotonic() < deadline:
            received += len(receiver.poll(0.1))
        elapsed = time.perf_counter() - began
        sender.flush()
    finally:
        sender.close()
        receiver.close()
    if received < messages:
        raise SetupError(f"{route.name}: the bench consumer read {received} of {messages} "
                         f"records within {DRAIN_TIMEOUT_S:.0f} s")
    return messages / elapsed


def _round_trips(route: Route) -> list[float]:
    """Milliseconds from produce to delivery report, one record at a time."""
    sender = KafkaSender(route.producer, TOPIC)
    samples: list[float] = []
    try:
        sender.send(encode(-1, 0.0))
        sender.flush()  # connected, producer id assigned: not part of any sample
        deadline = time.monotonic() + ROUND_TRIP_BUDGET_S
        while len(samples) < ROUND_TRIPS and time.monotonic() < deadline:
            began = time.perf_counter()
            sender.send(encode(len(samples), 0.0))
            sender.flush()
            samples.append((time.perf_counter() - began) * 1000)
    finally:
        sender.close()
    return samples


def _links(runtime: ProcessRuntime, broker: TansuNode) -> tuple[str, str]:
    """One fault-proxy link per client, each with its `tansu proxy`, as a scenario wires
    a service's link (SystemUnderTest.broker_link): the producer's and the consumer's
    bootstrap addresses."""
    plugin = broker_plugin("kafka")
    faultproxy = runtime.fault_proxy(seed=0)
    faultproxy.start()
    links = Links(faultproxy.endpoint(), runtime.network.bind_host)
    addresses = []
    for name in LINKS:
        listen = links.new_listen()
        hop = plugin.link_hop(runtime, broker, name, listen)
        if hop is None:
            raise SetupError("the kafka plugin put nothing behind a link")
        links.create(name, hop.endpoint(), listen)
        hop.start()  # once its link exists: its readiness is probed through the link
        addresses.append(listen.address)
    return addresses[0], addresses[1]


def run_kafka_proxy_bench(work_dir: Path, messages: int = 20000, repeats: int = 3,
                          progress: Progress = print) -> KafkaProxyBench:
    runtime = ProcessRuntime(work_dir)
    rates: dict[str, list[float]] = {"direct": [], "proxied": []}
    rtts: dict[str, list[float]] = {"direct": [], "proxied": []}
    try:
        progress("starting a Kafka broker as the scenarios do, the fault proxy, and a "
                 "`tansu proxy` behind each of two links")
        started = broker_plugin("kafka").start(runtime, "broker")
        try:
            broker = started.component
            if not isinstance(broker, TansuNode) or not isinstance(started.adapter,
                                                                   KafkaAdapter):
                raise SetupError("the kafka plugin started no Tansu broker")
            detail = f"Tansu on {broker.storage} storage ({broker.storage_url})"
            started.adapter.ensure_topic(TOPIC, naming.EVENTS_PARTITIONS)
            producer, consumer = _links(runtime, broker)
            routes = (Route("direct", broker.bootstrap, broker.bootstrap),
                     Route("proxied", producer, consumer))
            produce_consume_rate(routes[0], broker.bootstrap, min(messages, 2000), 0)  # warm-up
            for number in range(1, repeats + 1):
                for route in routes:
                    rates[route.name].append(produce_consume_rate(route, broker.bootstrap,
                                                                 messages, number))
                    rtts[route.name].extend(samples := _round_trips(route))
                    progress(f"round {number}/{repeats} {route.name:8}: "
                             f"{rates[route.name][-1]:8.0f} msg/s, produce round trip p50 "
                             f"{statistics.median(samples):.2f} ms")
        finally:
            started.adapter.close()
    finally:
        runtime.close()
    direct_rate = statistics.median(rates["direct"])
    proxied_rate = statistics.median(rates["proxied"])
    direct_rtt = figures.percentiles(rtts["direct"])
    proxied_rtt = figures.percentiles(rtts["proxied"])
    return KafkaProxyBench(detail, messages, repeats, round(direct_rate, 1),
                           round(proxied_rate, 1), direct_rtt, proxied_rtt,
                           compare_paths(direct_rate, proxied_rate, direct_rtt, proxied_rtt))


def report_lines(data: KafkaProxyBench) -> list[str]:
    return [f"Kafka ({data.broker_detail}), {data.messages} records x {data.repeats} "
            "rounds; proxied = fault-proxy link + tansu proxy per client",
            *(figures.format_comparison(c, "proxied", "direct") for c in data.comparisons)]


def kafka_proxy_command(args: argparse.Namespace) -> int:
    """`harness bench proxy --broker kafka` (the proxy bench's Kafka side)."""
    out_dir = figures.bench_dir(args.report_dir).resolve()
    print(f"bench proxy on kafka: {args.messages} records x {args.repeats} rounds, direct "
          "vs proxied")
    data = run_kafka_proxy_bench(out_dir, args.messages, args.repeats)
    path = figures.save(out_dir, {"bench": "proxy", "broker": "kafka", **data.to_dict(),
                                  "targets": {"throughput_ratio": THROUGHPUT_TARGET}})
    print()
    print("\n".join(report_lines(data)))
    print(f"data: {path}")
    return 0
