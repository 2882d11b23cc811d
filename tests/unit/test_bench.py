"""The benches' own logic, with fakes: percentiles, value / raw / ratio against a target,
the printed lines, the paced end-to-end measurement (loss, a silent broker, a failing
consumer), and the CLI's refusal of --broker where a bench measures one setup only."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from harness import cli
from harness.bench import e2e, figures, lag, proxy_kafka
from harness.errors import SetupError
from harness.metrics import percentile

# --- figures ------------------------------------------------------------------------------


def test_percentiles_follow_the_scenarios_rule() -> None:
    samples = [float(v) for v in range(100, 0, -1)]  # unordered on purpose
    result = figures.percentiles(samples)
    ordered = sorted(samples)
    assert result == figures.Percentiles(100, percentile(ordered, 0.5),
                                         percentile(ordered, 0.95), percentile(ordered, 0.99))
    assert (result.p50, result.p99) == (51.0, 99.0)


def test_percentiles_of_nothing_are_zero_over_zero_samples() -> None:
    assert figures.percentiles([]) == figures.Percentiles(0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(("ratio", "target", "met"), [
    (2.9, "<= 3", True), (3.0, "<= 3", True), (3.1, "<= 3", False),
    (0.95, ">= 0.9", True), (0.85, ">= 0.9", False), (None, "<= 3", None)])
def test_target_met(ratio: float | None, target: str, met: bool | None) -> None:
    assert figures.target_met(ratio, target) is met


def test_a_target_without_a_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="'<= N' or '>= N'"):
        figures.target_met(1.0, "3")


def test_compare_states_value_raw_ratio_and_the_target() -> None:
    item = figures.compare("lag p99", "ms", 150.0, 60.0, "<= 3")
    assert (item.value, item.raw, item.ratio, item.met) == (150.0, 60.0, 2.5, True)
    assert figures.format_comparison(item, "pipeline", "raw broker") == (
        "lag p99: pipeline 150.0 ms / raw broker 60.0 ms / ratio 2.50 (target <= 3: met)")


def test_compare_against_a_raw_zero_states_no_ratio() -> None:
    item = figures.compare("lag p50", "ms", 5.0, 0.0, "<= 3")
    assert item.ratio is None and item.met is None
    assert "ratio n/a (raw is 0)" in figures.format_comparison(item, "pipeline", "raw")
    assert "not shown" in figures.format_comparison(item, "pipeline", "raw")


def test_a_missed_target_is_printed_as_such() -> None:
    item = figures.compare("throughput", "msg/s", 800.0, 1000.0, ">= 0.9")
    assert figures.format_comparison(item, "proxied", "direct").endswith(
        "ratio 0.80 (target >= 0.9: NOT met)")


def test_save_writes_bench_json(tmp_path: Path) -> None:
    out = figures.bench_dir(tmp_path)
    path = figures.save(out, {"bench": "lag", "x": 1})
    assert path == out / "bench.json" and out.parent == tmp_path
    assert path.read_text().startswith("{\n  \"bench\": \"lag\"")


# --- the paced end-to-end measurement ---------------------------------------------------


class FakeBroker:
    """An in-memory queue: what is sent arrives, unless `drop` says otherwise."""

    def __init__(self, drop: frozenset[int] = frozenset(), fail_after: int | None = None,
                 deliver: bool = True) -> None:
        self.messages: queue.Queue[bytes] = queue.Queue()
        self.drop = drop
        self.fail_after = fail_after
        self.deliver = deliver
        self.polled = 0
        self.closed: list[str] = []

    def sender(self) -> FakeBroker.Sender:
        return FakeBroker.Sender(self)

    def receiver(self) -> FakeBroker.Receiver:
        return FakeBroker.Receiver(self)

    class Sender:
        def __init__(self, broker: FakeBroker) -> None:
            self.broker = broker

        def send(self, body: bytes) -> None:
            sequence, _sent_at = e2e.decode(body)
            if self.broker.deliver and sequence not in self.broker.drop:
                self.broker.messages.put(body)

        def close(self) -> None:
            self.broker.closed.append("sender")

    class Receiver:
        def __init__(self, broker: FakeBroker) -> None:
            self.broker = broker

        def poll(self, timeout_s: float) -> list[bytes]:
            self.broker.polled += 1
            if self.broker.fail_after is not None and self.broker.polled > self.broker.fail_after:
                raise ConnectionError("connection reset by broker")
            try:
                return [self.broker.messages.get(timeout=timeout_s)]
            except queue.Empty:
                return []

        def close(self) -> None:
            self.broker.closed.append("receiver")


def test_body_round_trip() -> None:
    body = e2e.encode(41, 12.5)
    assert len(body) == e2e.BODY_SIZE and e2e.decode(body) == (41, 12.5)


def test_every_message_sent_at_the_rate_is_timed() -> None:
    broker = FakeBroker()
    result = e2e.measure(broker.sender, broker.receiver, rate=1000, duration_s=0.05)
    assert result.sent == result.received == 50
    assert all(0 <= ms < 5000 for ms in result.latencies_ms)
    assert 0 < result.send_rate <= 1500  # paced: not faster than asked (with slack)
    assert sorted(broker.closed) == ["receiver", "sender"]


def test_lost_messages_are_counted_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e2e, "DRAIN_TIMEOUT_S", 0.3)
    broker = FakeBroker(drop=frozenset({3, 7}))
    result = e2e.measure(broker.sender, broker.receiver, rate=1000, duration_s=0.02)
    assert (result.sent, result.received) == (20, 18)


def test_a_broker_that_delivers_nothing_is_a_setup_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e2e, "WARMUP_TIMEOUT_S", 0.3)
    broker = FakeBroker(deliver=False)
    with pytest.raises(SetupError, match="received 0 of 20 warm-up messages"):
        e2e.measure(broker.sender, broker.receiver, rate=1000, duration_s=0.02)
    assert sorted(broker.closed) == ["receiver", "sender"]


def test_a_failing_consumer_is_reported_with_its_error() -> None:
    broker = FakeBroker(fail_after=2)
    with pytest.raises(SetupError, match="ConnectionError: connection reset by broker"):
        e2e.measure(broker.sender, broker.receiver, rate=1000, duration_s=0.05)


# --- lag and proxy benches' figures -----------------------------------------------------

RAW = figures.Percentiles(800, 50.0, 80.0, 100.0)
PIPELINE = figures.Percentiles(850, 120.0, 250.0, 400.0)


def lag_bench(raw_count: int = 800) -> lag.LagBench:
    raw = figures.Percentiles(raw_count, RAW.p50, RAW.p95, RAW.p99)
    return lag.LagBench("kafka", "Tansu on s3 storage", 200.0, 10.0, raw, 800, 199.5,
                        PIPELINE, "pass", "reports/x/pipeline",
                        lag.compare_lag(PIPELINE, raw))


def test_lag_is_compared_per_percentile_with_the_target_on_p99() -> None:
    p50, p95, p99 = lag.compare_lag(PIPELINE, RAW)
    assert [c.name for c in (p50, p95, p99)] == ["lag p50", "lag p95", "lag p99"]
    assert (p50.ratio, p95.ratio, p99.ratio) == (2.4, 3.125, 4.0)
    assert (p50.target, p95.target, p99.target) == ("", "", "<= 3")
    assert p99.met is False


def test_lag_report_names_broker_verdict_and_each_figure() -> None:
    lines = lag.report_lines(lag_bench())
    assert lines[0] == ("kafka (Tansu on s3 storage), 200 writes/s for 10 s; steady_state "
                        "verdict: PASS")
    assert lines[3] == ("lag p99: pipeline 400.0 ms / raw broker 100.0 ms / ratio 4.00 "
                        "(target <= 3: NOT met)")
    assert len(lines) == 4


def test_lag_report_flags_a_raw_broker_that_lost_messages() -> None:
    data = lag_bench(raw_count=790)
    assert data.raw_lost == 10
    assert lag.report_lines(data)[-1] == ("the raw consumer received 790 of 800 messages: "
                                          "the raw figures are incomplete")
    assert data.to_dict()["raw_end_to_end_ms"]["lost"] == 10


def test_lag_json_holds_both_sides_and_the_target() -> None:
    data = lag_bench().to_dict()
    assert data["pipeline_lag_ms"]["p99"] == 400.0
    assert data["raw_end_to_end_ms"]["p99"] == 100.0
    assert data["comparisons"][2]["ratio"] == 4.0
    assert data["targets"] == {"lag_p99_ratio": "<= 3"}


def test_steady_state_runs_at_the_bench_rate_and_duration() -> None:
    scenario = lag.steady_state_at(50.0, 3.0)
    assert scenario.name == "steady_state" and not scenario.faults
    assert (scenario.workload.rate_per_s, scenario.workload.duration_s) == (50.0, 3.0)


def test_proxy_figures_hold_throughput_to_its_target() -> None:
    direct = figures.Percentiles(200, 10.0, 20.0, 30.0)
    proxied = figures.Percentiles(200, 11.0, 22.0, 36.0)
    throughput, p50, p99 = proxy_kafka.compare_paths(1000.0, 950.0, direct, proxied)
    assert (throughput.ratio, throughput.target, throughput.met) == (0.95, ">= 0.9", True)
    assert (p50.ratio, p99.ratio) == (1.1, 1.2)
    data = proxy_kafka.KafkaProxyBench("Tansu on s3 storage", 2000, 2, 1000.0, 950.0,
                                       direct, proxied, (throughput, p50, p99))
    assert proxy_kafka.report_lines(data)[1] == (
        "produce+consume throughput: proxied 950.0 msg/s / direct 1000.0 msg/s / ratio 0.95 "
        "(target >= 0.9: met)")
    assert data.to_dict()["comparisons"][0]["met"] is True


# --- the CLI ------------------------------------------------------------------------------


def test_bench_refuses_broker_where_it_measures_one_setup(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "tap", "--broker", "kafka"]) == 2
    assert "`harness bench tap` measures one setup only" in capsys.readouterr().err


def test_bench_lag_refuses_a_rate_of_zero_before_starting_anything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "lag", "--rate", "0", "--report-dir", str(tmp_path)]) == 2
    assert "--rate: must be > 0, got 0.0" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
