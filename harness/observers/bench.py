"""`harness bench tap`: what the broker tap costs the replication path, as a ratio.

In one run, against one private RabbitMQ node: publish N persistent product events with
batched publisher confirms to the event exchange, and consume them from a consumer's queue
with prefetch and multiple-acks; messages per second from the first publish to the last
ack, without the tap, then with the tap's queue bound and consumed by the harness's own
tap (as in every scenario). Rounds alternate so that drift hits both alike; medians are
reported, and each tap round must have recorded every message.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pika
import pika.exceptions

from harness.bench import figures
from harness.brokers.rabbitmq import RabbitMQAdapter
from harness.contract import envelope as env
from harness.contract import naming
from harness.errors import SetupError
from harness.runtime.processes import ProcessRuntime
from harness.runtime.rabbitmq_node import RabbitMQNode

BENCH_CONSUMER = "bench"
BATCH = 500  # messages per confirmed batch, as the reference relay sends them
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class TapBench:
    messages: int
    repeats: int
    without_tap_msgs_per_s: float
    with_tap_msgs_per_s: float
    throughput_ratio: float  # with / without
    tap_recorded_all: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def event_bodies(count: int) -> list[tuple[str, bytes]]:
    """Product events about the size of the real ones: (routing key, body)."""
    return [(naming.routing_key(str(i % 500)),
             env.Envelope(f"bench-{i}", env.STOCK_ADJUSTED, str(i % 500), i + 1, i + 1,
                          time.time(), env.SCHEMA_VERSION,
                          {"delta": 1, "stock": i}).encode())
            for i in range(count)]


class _BatchPublisher:
    """Publishes a batch, then waits for the broker to confirm all of it (one round trip
    per batch, not per message, as pika's blocking channel would)."""

    def __init__(self, url: str) -> None:
        self._ready = threading.Event()
        self._confirmed = threading.Event()
        self._pending: set[int] = set()  # delivery tags not yet confirmed
        self._next_tag = 0
        self._error = ""
        self._channel: Any = None
        self._connection = pika.SelectConnection(
            pika.URLParameters(url), on_open_callback=self._on_open,
            on_open_error_callback=lambda _c, exc: self._fail(str(exc)),
            on_close_callback=self._on_close)
        self._thread = threading.Thread(target=self._connection.ioloop.start, daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error:
            raise SetupError(f"bench publisher cannot connect: {self._error or 'timeout'}")

    def _fail(self, why: str) -> None:
        self._error = why
        self._ready.set()
        self._confirmed.set()

    def _on_close(self, connection: Any, reason: BaseException) -> None:
        self._fail(str(reason))
        connection.ioloop.stop()

    def _on_open(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel: Any) -> None:
        self._channel = channel
        channel.confirm_delivery(ack_nack_callback=self._on_confirm,
                                 callback=lambda _frame: self._ready.set())

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self._error = "the broker nacked a message"
        tag = int(method.delivery_tag)
        self._pending -= ({t for t in self._pending if t <= tag} if method.multiple
                          else {tag})
        if not self._pending:
            self._confirmed.set()

    def publish(self, batch: Sequence[tuple[str, bytes]]) -> None:
        self._confirmed.clear()

        def send() -> None:  # on the connection's I/O thread
            for key, body in batch:
                self._channel.basic_publish(naming.EXCHANGE, key, body,
                                            pika.BasicProperties(delivery_mode=2))
                self._next_tag += 1
                self._pending.add(self._next_tag)

        self._connection.ioloop.add_callback_threadsafe(send)
        if not self._confirmed.wait(TIMEOUT_S) or self._error:
            raise SetupError(f"bench batch not confirmed: {self._error or 'timeout'}")

    def close(self) -> None:
        self._connection.ioloop.add_callback_threadsafe(self._connection.close)
        self._thread.join(5)


def publish_consume_round(url: str, bodies: Sequence[tuple[str, bytes]]) -> float:
    """Publish every body (batched confirms) and drain the consumer's queue: msgs/s."""
    publisher = _BatchPublisher(url)
    consumer = pika.BlockingConnection(pika.URLParameters(url))
    channel = consumer.channel()
    channel.basic_qos(prefetch_count=1000)
    began = time.perf_counter()
    try:
        for start in range(0, len(bodies), BATCH):
            publisher.publish(bodies[start:start + BATCH])
        received, deadline = 0, time.monotonic() + TIMEOUT_S
        queue = naming.queue_name(BENCH_CONSUMER)
        for method, _props, _body in channel.consume(queue, inactivity_timeout=1.0):
            if method is None:
                if time.monotonic() > deadline:
                    raise SetupError(f"bench consumer got {received} of {len(bodies)}")
                continue
            received += 1
            if received % 500 == 0 or received == len(bodies):
                channel.basic_ack(method.delivery_tag, multiple=True)
            if received == len(bodies):
                break
        elapsed = time.perf_counter() - began
        channel.cancel()
    finally:
        publisher.close()
        consumer.close()
    return len(bodies) / elapsed


def run_tap_bench(work_dir: Path, messages: int = 20_000, repeats: int = 3,
                  progress: Callable[[str], None] = print) -> TapBench:
    runtime = ProcessRuntime(work_dir)
    rates: dict[str, list[float]] = {"without": [], "with": []}
    recorded_all = True
    try:
        broker = runtime.rabbitmq("broker")
        assert isinstance(broker, RabbitMQNode)
        progress("starting a private RabbitMQ node")
        broker.start()
        adapter = RabbitMQAdapter(broker.amqp_url)
        setup = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        channel = setup.channel()
        channel.exchange_declare(naming.EXCHANGE, exchange_type="topic", durable=True)
        channel.queue_declare(naming.queue_name(BENCH_CONSUMER), durable=True)
        channel.queue_bind(naming.queue_name(BENCH_CONSUMER), naming.EXCHANGE,
                           routing_key=naming.EVENTS_BINDING)
        bodies = event_bodies(messages)
        publish_consume_round(broker.amqp_url, bodies[:2000])  # warm-up
        for number in range(1, repeats + 1):
            rates["without"].append(publish_consume_round(broker.amqp_url, bodies))
            tap = adapter.open_tap(f"bench-{number}")
            tap.start()
            try:
                rates["with"].append(publish_consume_round(broker.amqp_url, bodies))
                tap.drain(30.0)
                recorded_all &= len({r["event_id"] for r in tap.records()}) == messages
            finally:
                tap.stop()
                # Unbound and gone, so the next round without the tap routes to one queue.
                channel.queue_delete(naming.tap_queue_name(f"bench-{number}"))
            progress(f"round {number}/{repeats}: without tap {rates['without'][-1]:8.0f} "
                     f"msg/s, with tap {rates['with'][-1]:8.0f} msg/s")
        setup.close()
        adapter.close()
    finally:
        runtime.close()
    without, with_tap = statistics.median(rates["without"]), statistics.median(rates["with"])
    return TapBench(messages, repeats, round(without, 1), round(with_tap, 1),
                    round(with_tap / without, 3), recorded_all)


def tap_command(args: argparse.Namespace) -> int:
    """The `harness bench tap` entry point (group replication_chaos_harness.benches)."""
    out_dir = Path(args.report_dir) / time.strftime("bench-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"bench tap: {args.messages} messages x {args.repeats} rounds, without vs with "
          "the broker tap")
    data = run_tap_bench(out_dir, args.messages, args.repeats)
    saved = figures.save(out_dir, {"bench": "tap", **data.to_dict()})
    print(f"\npublish (batched confirms) + consume: without the tap "
          f"{data.without_tap_msgs_per_s:.0f} msg/s, with it {data.with_tap_msgs_per_s:.0f} "
          f"msg/s -> ratio {data.throughput_ratio:.2f}; the tap recorded every message: "
          f"{data.tap_recorded_all}")
    print(f"data: {saved}")
    return 0 if data.tap_recorded_all else 1
