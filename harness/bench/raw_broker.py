"""The raw broker's figures for `harness bench replication`, on one broker started by the
run's plugin as every scenario starts it (for Kafka, Tansu on its S3 storage):

- publish+consume rate: N messages published in confirmed batches (RabbitMQ: batches of
  500 with publisher confirms, to the events exchange, as the reference relay sends them;
  Kafka: an idempotent `acks=all` producer), all consumed back; messages per second from
  the first publish to the last message read, median over rounds;
- end-to-end latency at each fixed rate of the ladder (harness/bench/e2e.py).

Every process started is stopped on the way out (also on Ctrl-C).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika

from harness.bench import figures
from harness.bench.e2e import measure
from harness.bench.lag import bench_clients, describe
from harness.bench.proxy_kafka import TOPIC, Route, produce_consume_rate
from harness.brokers.kafka import KafkaAdapter
from harness.brokers.registry import StartedBroker, amqp_url, broker_plugin
from harness.contract import naming
from harness.errors import SetupError

# The tap bench's round is exactly this measure on RabbitMQ (batched confirms to the
# events exchange, a consumer's queue drained with prefetch and multiple acks).
from harness.observers.bench import BENCH_CONSUMER, event_bodies, publish_consume_round
from harness.runtime.processes import ProcessRuntime

WARMUP_MESSAGES = 2000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RawLatency:
    """End to end at one rate: `sent` measured messages, percentiles of those received."""

    rate: float
    sent: int
    send_rate: float
    latency: figures.Percentiles

    @property
    def lost(self) -> int:
        return self.sent - self.latency.count

    def to_dict(self) -> dict[str, Any]:
        return {"rate_per_s": self.rate, "sent": self.sent, "lost": self.lost,
                "send_rate": self.send_rate, **self.latency.to_dict()}


@dataclass(frozen=True)
class RawBroker:
    broker: str
    detail: str
    messages: int
    rounds: tuple[float, ...]  # publish+consume msg/s of each round
    latencies: tuple[RawLatency, ...]

    @property
    def publish_consume_per_s(self) -> float:
        return round(statistics.median(self.rounds), 1)

    @property
    def lost(self) -> int:
        return sum(item.lost for item in self.latencies)

    def latency_at(self, rate: float) -> RawLatency | None:
        return next((item for item in self.latencies if item.rate == rate), None)

    def to_dict(self) -> dict[str, Any]:
        return {"broker": self.broker, "detail": self.detail, "messages": self.messages,
                "publish_consume_rounds": list(self.rounds),
                "publish_consume_per_s": self.publish_consume_per_s,
                "end_to_end_ms": [item.to_dict() for item in self.latencies]}


def _rabbitmq_rate(started: StartedBroker, messages: int, rounds: int) -> list[float]:
    url = amqp_url(started.component.endpoint())
    queue = naming.queue_name(BENCH_CONSUMER)
    setup = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = setup.channel()
        channel.exchange_declare(naming.EXCHANGE, exchange_type="topic", durable=True)
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, naming.EXCHANGE, routing_key=naming.EVENTS_BINDING)
        bodies = event_bodies(messages)
        publish_consume_round(url, bodies[:WARMUP_MESSAGES])
        rates = [publish_consume_round(url, bodies) for _ in range(rounds)]
        # Unbound and gone: the end-to-end measures that follow use a queue of their own.
        channel.queue_delete(queue)
    finally:
        setup.close()
    return rates


def _kafka_rate(started: StartedBroker, messages: int, rounds: int) -> list[float]:
    if not isinstance(started.adapter, KafkaAdapter):
        raise SetupError("the kafka plugin started no Kafka adapter")
    bootstrap = started.component.endpoint().address
    started.adapter.ensure_topic(TOPIC, naming.EVENTS_PARTITIONS)
    direct = Route("direct", bootstrap, bootstrap)
    produce_consume_rate(direct, bootstrap, min(messages, WARMUP_MESSAGES), 0)
    return [produce_consume_rate(direct, bootstrap, messages, number)
            for number in range(1, rounds + 1)]


def measure_raw_broker(broker: str, work_dir: Path, messages: int, rounds: int,
                       rates: Sequence[float], duration_s: float,
                       progress: Progress) -> RawBroker:
    runtime = ProcessRuntime(work_dir)
    try:
        progress(f"raw broker: starting a {broker} broker as the scenarios do")
        started = broker_plugin(broker).start(runtime, "broker")
        try:
            detail = describe(started)
            progress(f"raw broker: publish+consume {messages} messages x {rounds} "
                     f"round(s) on {detail}")
            measure_rate = _kafka_rate if broker == "kafka" else _rabbitmq_rate
            throughput = measure_rate(started, messages, rounds)
            progress("raw broker: publish+consume " + ", ".join(
                f"{rate:.0f}" for rate in throughput) + " msg/s")
            latencies = []
            for rate in rates:
                progress(f"raw broker: end to end at {rate:g}/s for {duration_s:g} s")
                # Opened per rate: a Kafka consumer starts at the log's end as it is now,
                # past the messages of the rates before.
                seen = measure(*bench_clients(broker, started), rate, duration_s)
                latency = RawLatency(rate, seen.sent, seen.send_rate,
                                     figures.percentiles(seen.latencies_ms))
                latencies.append(latency)
                progress(f"raw broker: end to end at {rate:g}/s: p50 "
                         f"{latency.latency.p50:.1f} ms, p99 {latency.latency.p99:.1f} ms "
                         f"({latency.latency.count} of {latency.sent} received)")
        finally:
            started.adapter.close()
    finally:
        runtime.close()
    return RawBroker(broker, detail, messages, tuple(round(r, 1) for r in throughput),
                     tuple(latencies))
