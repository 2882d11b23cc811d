"""Unit tests for the load's offered and achieved rates (harness.metrics.load_rates and
load_metrics), the `progress` check judging them, and the summary line showing them."""

from __future__ import annotations

from typing import Any

from harness.checkers import progress
from harness.metrics import load_metrics, load_rates
from harness.reporting.summary import scenario_line
from harness.results import ScenarioResult

RATE = 200.0


def op(index: int, latency_ms: float = 5.0, ok: bool = True, sent_late_ms: float = 0.1,
       cap_full: bool = False) -> dict[str, Any]:
    """A write record as the driver writes it: due at index / RATE."""
    return {"index": index, "op": "update", "ok": ok, "due_s": round(index / RATE, 4),
            "latency_ms": latency_ms, "sent_late_ms": sent_late_ms, "cap_full": cap_full}


def on_schedule(count: int = 1000) -> list[dict[str, Any]]:
    return [op(i) for i in range(count)]


def behind_schedule(count: int = 1000) -> list[dict[str, Any]]:
    """Every write answered, but the publisher took one per 10 ms: each write waited for
    the one before it, so the last was answered at twice the planned window."""
    return [op(i, latency_ms=5.0 * i + 10, sent_late_ms=5.0 * i, cap_full=i > 0)
            for i in range(count)]


def test_rates_are_read_back_from_the_schedule() -> None:
    rates = load_rates(on_schedule())
    assert rates is not None
    assert rates.offered_per_s == RATE
    # 1000 writes acknowledged from 0 s (the first due time) to 4.995 + 0.005 s.
    assert rates.window_s == 5.0
    assert rates.achieved_per_s == 200.0
    assert (rates.acknowledged, rates.behind_schedule) == (1000, 0)


def test_failed_writes_count_in_the_window_not_in_the_achieved_rate() -> None:
    ops = [op(i, ok=i % 2 == 0) for i in range(1000)]
    rates = load_rates(ops)
    assert rates is not None
    assert rates.achieved_per_s == 100.0


def test_no_rate_without_a_schedule() -> None:
    # Stored before the driver recorded when each write was due; or a single write.
    assert load_rates([{"index": i, "ok": True} for i in range(10)]) is None
    assert load_rates([op(0)]) is None
    assert load_metrics([{"index": 1, "ok": True}]) == {}


def test_metrics_name_the_rates_latency_and_slip() -> None:
    metrics = load_metrics(behind_schedule())
    assert metrics["offered_rate_per_s"] == 200.0
    assert metrics["achieved_rate_per_s"] == round(1000 / (4.995 + 5.005), 2)
    assert metrics["writes_behind_schedule"] == 999
    assert metrics["max_send_delay_ms"] == 4995.0
    assert metrics["write_latency_ms"] == {"p50": 2510.0, "p99": 4955.0, "max": 5005.0}


def test_progress_passes_on_schedule_and_names_both_rates() -> None:
    result = progress(on_schedule(), planned=1000)
    assert result.ok
    assert result.details == ("1000 of 1000 planned writes succeeded (1000 attempted); "
                              "the workload's records show 200.0 writes/s acknowledged of "
                              "200 offered (100%, over 5.0 s)")


def test_progress_fails_a_run_that_wrote_everything_but_late() -> None:
    result = progress(behind_schedule(), planned=1000)
    assert not result.ok
    assert result.details.startswith("too little load: 1000 of 1000 planned writes")
    assert "100.0 writes/s acknowledged of 200 offered (50%, over 10.0 s)" in result.details
    assert "999 writes sent late because the cap on writes in flight was full " \
           "(up to 4995 ms)" in result.details
    assert result.details.endswith("the scenario requires 90% of the planned writes (900) "
                                   "and 80% of the offered rate")
    assert result.counterexample is not None
    assert result.counterexample["achieved_rate_per_s"] == 100.0


def test_a_lower_share_lowers_the_rate_required_too() -> None:
    assert progress(behind_schedule(), planned=1000, min_share=0.5).ok
    assert not progress(behind_schedule(), planned=1000, min_share=0.51).ok
    # The rate required is capped: a busy machine may leave the last answers late.
    assert not progress(behind_schedule(), planned=1000, min_share=0.9).ok
    assert progress(behind_schedule(), planned=1000, min_share=0.5).ok
    # A saturation run asks for no share at all.
    assert progress(behind_schedule(), planned=1000, min_share=0.0).ok


def test_summary_line_shows_offered_and_achieved_rates() -> None:
    result = ScenarioResult("steady_state", 7, metrics={
        "events_processed": 1650, "throughput_eps": 199.0,
        "lag_ms": {"p50": 9.0, "p99": 30.0}, **load_metrics(on_schedule())})
    result.checks = [progress(on_schedule(), planned=1000)]
    line = scenario_line(result.to_dict())
    assert line.endswith("| writes 200.0/s of 200 offered, latency p50 5.0ms p99 5.0ms")
    # Older runs, without the figures, keep their line as it was.
    assert "|" not in scenario_line(ScenarioResult("old", 7, checks=result.checks).to_dict())
