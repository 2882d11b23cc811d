"""The benches on real brokers, tiny: `harness bench lag` on each broker and
`harness bench proxy --broker kafka` measure, save their figures and leave nothing
running. The figures themselves are noisy on a shared machine; these tests hold only
their shape (both sides measured, a ratio stated), never a timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _bench_json(root: Path) -> dict[str, object]:
    (found,) = root.glob("bench-*/bench.json")
    data: dict[str, object] = json.loads(found.read_text())
    return data


@pytest.mark.parametrize("broker", ["rabbitmq", "kafka"])
def test_bench_lag_sets_the_pipeline_against_the_raw_broker(broker: str,
                                                            leak_check: Path) -> None:
    code = cli.main(["bench", "lag", "--broker", broker, "--rate", "100", "--duration-s",
                     "2", "--seed", "3", "--report-dir", str(leak_check)])
    assert code == 0
    data = _bench_json(leak_check)
    raw, pipeline = data["raw_end_to_end_ms"], data["pipeline_lag_ms"]
    assert isinstance(raw, dict) and isinstance(pipeline, dict)
    assert raw["sent"] == raw["count"] == 200 and raw["p99"] > 0
    assert pipeline["verdict"] == "pass" and pipeline["p99"] > 0
    p99 = data["comparisons"][-1]  # type: ignore[index]
    assert p99["name"] == "lag p99" and p99["ratio"] > 0 and p99["target"] == "<= 3"
    if broker == "kafka":
        assert data["broker_detail"] == "Tansu on s3 storage (s3://tansu/)"


def test_bench_proxy_on_kafka_goes_through_the_links(leak_check: Path) -> None:
    code = cli.main(["bench", "proxy", "--broker", "kafka", "--messages", "500",
                     "--repeats", "1", "--report-dir", str(leak_check)])
    assert code == 0
    data = _bench_json(leak_check)
    assert data["broker"] == "kafka"
    assert data["direct_msgs_per_s"] > 0 and data["proxied_msgs_per_s"] > 0  # type: ignore[operator]
    throughput = data["comparisons"][0]  # type: ignore[index]
    assert throughput["target"] == ">= 0.9" and throughput["ratio"] > 0
    # A `tansu proxy` per link was started behind the fault proxy, as in a scenario.
    logs = list(leak_check.glob("bench-*/tansu-proxy-bench_*.log"))
    assert len(logs) == 2
