"""The raw parts of `harness bench replication` on real brokers, tiny: one broker measures
its publish+consume rate and its end-to-end latency at two rates one after the other, and
leaves nothing running. The whole bench runs for minutes, so its pipeline side (scenarios
run through the session, like any others) is not run here. Shapes only, never a timing."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bench.raw_broker import measure_raw_broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("broker", ["rabbitmq", "kafka"])
def test_one_broker_measures_its_rate_and_each_rates_latency(broker: str,
                                                              leak_check: Path) -> None:
    lines: list[str] = []
    raw = measure_raw_broker(broker, leak_check, messages=500, rounds=1,
                             rates=(50.0, 100.0), duration_s=1.0, progress=lines.append)
    assert len(raw.rounds) == 1 and raw.publish_consume_per_s > 0
    # One broker serves both rates, each with its own producer and consumer; every
    # message sent at each rate arrives.
    assert [(item.rate, item.sent, item.latency.count) for item in raw.latencies] == [
        (50.0, 50, 50), (100.0, 100, 100)]
    assert raw.lost == 0 and lines[0].startswith(f"raw broker: starting a {broker} broker")
