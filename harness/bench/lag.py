"""`harness bench lag`: the pipeline's replication lag next to the raw broker's
end-to-end latency, at the same steady rate, in one run on one machine.

First a broker is started by the run's broker plugin (as every scenario starts it: for
Kafka, Tansu on its S3 storage) and the harness's own producer and consumer measure its
end-to-end latency at the rate (harness/bench/e2e.py); then the broker is stopped and the
steady_state scenario runs at the same rate and duration, on a broker started the same
way, and its lag (replica commit minus source commit, per event) is read from its result.
Each figure is reported as pipeline / raw / ratio; the design holds p99's ratio to <= 3.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from harness.bench import figures
from harness.bench.clients import KafkaReceiver, KafkaSender, RabbitReceiver, RabbitSender
from harness.bench.e2e import EndToEnd, Receiver, Sender, measure
from harness.brokers import kafka_client
from harness.brokers.kafka import KafkaAdapter
from harness.brokers.registry import StartedBroker, amqp_url, broker_plugin
from harness.contract import naming
from harness.errors import ConfigError, SetupError
from harness.runtime.processes import ProcessRuntime
from harness.runtime.rabbitmq_node import RabbitMQNode
from harness.runtime.tansu_node import TansuNode
from harness.scenario import Scenario
from harness.session import run_scenarios, select_scenarios
from harness.settings import RunSettings

SCENARIO = "steady_state"
P99_TARGET = "<= 3"
BENCH_QUEUE = "bench.e2e"
BENCH_TOPIC = "bench-e2e"
BENCH_GROUP = "bench-e2e"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LagBench:
    broker: str
    broker_detail: str
    rate: float
    duration_s: float
    raw: figures.Percentiles
    raw_sent: int
    raw_send_rate: float
    pipeline: figures.Percentiles
    pipeline_verdict: str
    pipeline_report: str
    comparisons: tuple[figures.Comparison, ...]

    @property
    def raw_lost(self) -> int:
        return self.raw_sent - self.raw.count

    def to_dict(self) -> dict[str, Any]:
        return {"bench": "lag", "broker": self.broker, "broker_detail": self.broker_detail,
                "rate_per_s": self.rate, "duration_s": self.duration_s,
                "raw_end_to_end_ms": {**self.raw.to_dict(), "sent": self.raw_sent,
                                      "lost": self.raw_lost,
                                      "send_rate": self.raw_send_rate},
                "pipeline_lag_ms": {**self.pipeline.to_dict(),
                                    "verdict": self.pipeline_verdict,
                                    "report": self.pipeline_report},
                "comparisons": [c.to_dict() for c in self.comparisons],
                "targets": {"lag_p99_ratio": P99_TARGET}}


def compare_lag(pipeline: figures.Percentiles,
                raw: figures.Percentiles) -> tuple[figures.Comparison, ...]:
    """Pipeline against raw, per percentile; the design's target applies to p99."""
    return tuple(figures.compare(f"lag {name}", "ms", getattr(pipeline, name),
                                 getattr(raw, name), P99_TARGET if name == "p99" else "")
                 for name in ("p50", "p95", "p99"))


def describe(started: StartedBroker) -> str:
    node = started.component
    if isinstance(node, TansuNode):
        return f"Tansu on {node.storage} storage ({node.storage_url})"
    if isinstance(node, RabbitMQNode):
        return "a private RabbitMQ node"
    return type(node).__name__


def bench_clients(broker: str, started: StartedBroker
                  ) -> tuple[Callable[[], Sender], Callable[[], Receiver]]:
    """Openers of the harness's own producer and consumer on the started broker; the
    consumer reads what is sent after this call (so one broker serves several measures)."""
    address = started.component.endpoint()
    if broker == "rabbitmq":
        url = amqp_url(address)
        return partial(RabbitSender, url, BENCH_QUEUE), partial(RabbitReceiver, url,
                                                                BENCH_QUEUE)
    if not isinstance(started.adapter, KafkaAdapter):
        raise SetupError(f"no bench clients for broker {broker!r}")
    # The topic exists before either client: Tansu would otherwise create it on the
    # first metadata request with its default partition count.
    started.adapter.ensure_topic(BENCH_TOPIC, naming.EVENTS_PARTITIONS)
    start = {p: b.end for p, b in kafka_client.log_bounds(
        address.address, BENCH_TOPIC, range(naming.EVENTS_PARTITIONS)).items()}
    return (partial(KafkaSender, address.address, BENCH_TOPIC),
            partial(KafkaReceiver, address.address, BENCH_GROUP, BENCH_TOPIC, start))


def raw_end_to_end(broker: str, work_dir: Path, rate: float, duration_s: float,
                   progress: Progress) -> tuple[EndToEnd, str]:
    """The raw broker's end-to-end latencies at `rate`, and what broker it was. Every
    process started is stopped on the way out (also on Ctrl-C)."""
    runtime = ProcessRuntime(work_dir)
    try:
        progress(f"starting a {broker} broker as the scenarios do")
        started = broker_plugin(broker).start(runtime, "broker")
        try:
            detail = describe(started)
            open_sender, open_receiver = bench_clients(broker, started)
            progress(f"raw end to end on {detail}: {round(rate * duration_s)} messages at "
                     f"{rate:g}/s")
            return measure(open_sender, open_receiver, rate, duration_s), detail
        finally:
            started.adapter.close()
    finally:
        runtime.close()


def steady_state_at(rate: float, duration_s: float) -> Scenario:
    """The steady_state scenario with the bench's rate and duration."""
    scenario = select_scenarios([SCENARIO])[0]
    return dataclasses.replace(scenario, workload=dataclasses.replace(
        scenario.workload, rate_per_s=rate, duration_s=duration_s))


def run_lag_bench(out_dir: Path, broker: str, rate: float, duration_s: float, seed: int,
                  progress: Progress = print) -> LagBench:
    raw, detail = raw_end_to_end(broker, out_dir / "raw", rate, duration_s, progress)
    raw_figures = figures.percentiles(raw.latencies_ms)
    progress(f"raw end to end: p50 {raw_figures.p50:.1f} ms, p99 {raw_figures.p99:.1f} ms "
             f"({raw.received} of {raw.sent} received)")
    progress(f"pipeline: {SCENARIO} at {rate:g} writes/s for {duration_s:g} s on {broker} "
             f"(seed {seed})")
    result, report = run_scenarios(
        [steady_state_at(rate, duration_s)],
        RunSettings(seed=seed, broker=broker, report_root=out_dir), out_dir / "pipeline",
        lambda name, message: progress(f"  {name}: {message}"))
    scenario = result.scenarios[0]
    lag = scenario.metrics.get("lag_ms", {})
    pipeline = figures.Percentiles(int(scenario.metrics.get("events_processed", 0)),
                                   *(float(lag.get(q, 0.0)) for q in ("p50", "p95", "p99")))
    return LagBench(broker, detail, rate, duration_s, raw_figures, raw.sent, raw.send_rate,
                    pipeline, scenario.verdict, str(report),
                    compare_lag(pipeline, raw_figures))


def report_lines(data: LagBench) -> list[str]:
    lines = [f"{data.broker} ({data.broker_detail}), {data.rate:g} writes/s for "
             f"{data.duration_s:g} s; {SCENARIO} verdict: {data.pipeline_verdict.upper()}"]
    lines += [figures.format_comparison(c, "pipeline", "raw broker") for c in data.comparisons]
    if data.raw_lost:
        lines.append(f"the raw consumer received {data.raw.count} of {data.raw_sent} "
                     "messages: the raw figures are incomplete")
    return lines


def lag_command(args: argparse.Namespace) -> int:
    """The `harness bench lag` entry point (group replication_chaos_harness.benches)."""
    for option, value in (("--rate", args.rate), ("--duration-s", args.duration_s)):
        if not value > 0:
            raise ConfigError(option, f"must be > 0, got {value}",
                              "e.g. --rate 200 --duration-s 10")
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    out_dir = figures.bench_dir(args.report_dir).resolve()
    started = time.monotonic()
    data = run_lag_bench(out_dir, args.broker, args.rate, args.duration_s, seed)
    path = figures.save(out_dir, {**data.to_dict(), "seed": seed,
                                  "elapsed_s": round(time.monotonic() - started, 1)})
    print()
    print("\n".join(report_lines(data)))
    print(f"data: {path}")
    # The figures of a run that did not pass, or of a raw broker that lost messages,
    # measure something else than the design's targets speak of.
    return 0 if data.pipeline_verdict == "pass" and not data.raw_lost else 1
