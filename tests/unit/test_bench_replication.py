"""`harness bench replication` without a broker or services: the plan of scenarios it
builds, the raw database's bounded loop, the figures read from scenario results (rungs,
the heal's backlog and reconnect, the drain rate, recovery per fault type) and each
section's pipeline / raw / ratio against its target, the printed lines and the JSON, and
the CLI's refusal of bad options before anything starts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.bench import figures, raw_db, replication
from harness.bench import replication_figures as rf
from harness.bench import replication_plan as plan
from harness.bench.raw_broker import RawBroker, RawLatency
from harness.checkers.base import CheckResult
from harness.collected import Collected
from harness.errors import ConfigError
from harness.results import ScenarioResult

# --- the plan -----------------------------------------------------------------------------


def test_quick_plan_is_two_rungs_and_one_repeat_whatever_repeats_says() -> None:
    quick = plan.plan_for(True, None, repeats=3)
    assert (quick.rates, quick.repeats) == ((100.0, 200.0), 1)
    full = plan.plan_for(False, None, repeats=3)
    assert (full.rates, full.repeats) == ((50.0, 100.0, 200.0, 400.0), 3)
    assert plan.plan_for(False, (300.0,), repeats=2).rates == (300.0,)


@pytest.mark.parametrize(("rates", "repeats", "where"), [
    ((), 1, "--rates"), ((100.0, 0.0), 1, "--rates"), ((100.0, 100.0), 1, "--rates"),
    ((100.0,), 0, "--repeats")])
def test_a_plan_refuses_what_it_cannot_measure(rates: tuple[float, ...], repeats: int,
                                               where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        plan.BenchPlan(rates, 5.0, 4.0, 6.0, repeats)


def test_rates_are_parsed_from_a_comma_list() -> None:
    assert plan.parse_rates(None) is None
    assert plan.parse_rates("50, 100,200.5,") == (50.0, 100.0, 200.5)
    with pytest.raises(ConfigError, match="not a list of numbers: 'fast'"):
        plan.parse_rates("fast")


def test_build_runs_ladder_saturation_drain_then_interleaved_outages() -> None:
    built = plan.build(plan.BenchPlan((100.0, 200.5), 6.0, 4.0, 6.0, 2))
    names = [p.scenario.name for p in built]
    assert names[:4] == ["bench_rate_100", "bench_rate_200_5", "bench_saturation",
                         "bench_drain"]
    assert len(set(names)) == len(names)  # one run judges each name once
    outages = [(p.fault, p.repeat) for p in built if p.kind == plan.RECOVERY]
    assert outages[:5] == [(f"{a}:{t}", 1) for a, t in plan.RECOVERY_FAULTS]
    assert len(outages) == 2 * len(plan.RECOVERY_FAULTS) and outages[-1][1] == 2
    assert all(p.scenario.workload.concurrency == plan.CONCURRENCY
               for p in built if p.kind != plan.SATURATION)


def test_saturation_may_leave_planned_writes_unwritten() -> None:
    built = plan.saturation(4.0)
    assert built.scenario.min_write_share == 0.0
    assert built.scenario.workload.rate_per_s == plan.SATURATION_RATE


def test_the_drain_keeps_the_relay_cut_until_after_the_last_write() -> None:
    built = plan.drain(6.0)
    (step,) = built.scenario.faults
    workload = built.scenario.workload
    last_write_due = workload.max_ops / workload.rate_per_s
    assert (step.action, step.target) == ("link_down", "relay_broker")
    assert built.fault == "link_down:relay_broker"
    assert step.at_s + step.duration_s == pytest.approx(
        last_write_due + plan.DRAIN_HEAL_AFTER_LOAD_S)


def test_an_outage_lasts_ten_seconds_under_load_that_outlives_it() -> None:
    built = plan.recovery("pause", "broker", 3)
    (step,) = built.scenario.faults
    assert (built.fault, built.repeat, built.scenario.name) == ("pause:broker", 3,
                                                                "bench_pause_broker_3")
    assert (step.at_s, step.duration_s) == (plan.FAULT_AT_S, plan.OUTAGE_S)
    assert built.scenario.workload.duration_s > step.at_s + step.duration_s


# --- the raw database ---------------------------------------------------------------------


class FakeClock:
    def __init__(self, step_s: float) -> None:
        self.now = 0.0
        self.step_s = step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


def test_transactions_stop_at_the_count() -> None:
    committed: list[int] = []
    done, _seconds = raw_db.timed_transactions(lambda: committed.append(1), 7, 60.0,
                                               FakeClock(0.001))
    assert done == len(committed) == 7


def test_transactions_stop_at_the_time_budget() -> None:
    # The clock reads 0.25 s later each time it is asked: 3 commits fit in 1 s.
    done, seconds = raw_db.timed_transactions(lambda: None, 10_000, 1.0, FakeClock(0.25))
    assert (done, seconds) == (3, 1.25)


def test_sqlite_rate_commits_each_row_to_a_wal_file(tmp_path: Path) -> None:
    rate = raw_db.sqlite_rate_at(tmp_path / "raw.db", 40)
    assert (rate.db, rate.transactions) == ("sqlite", 40) and rate.per_s > 0
    with sqlite3.connect(tmp_path / "raw.db") as connection:
        assert connection.execute(f"SELECT count(*) FROM {raw_db.TABLE}").fetchone() == (40,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_rate_over_no_time_is_zero() -> None:
    assert raw_db.DbRate("sqlite", 0, 0.0).per_s == 0.0
    # Forty WAL commits can take under half a millisecond: still a rate, not none.
    quick = raw_db.DbRate("sqlite", 40, 0.0004)
    assert quick.per_s == 100000.0 and quick.to_dict()["seconds"] == 0.0004
    assert raw_db.DbRate("sqlite", 500, 0.25).to_dict()["per_s"] == 2000.0


# --- figures from scenario results --------------------------------------------------------


def scenario(name: str, **metrics: Any) -> ScenarioResult:
    check = CheckResult("convergence", True, "replica equals source")
    return ScenarioResult(name, 1, checks=[check], metrics=metrics)


def op(answered_at: float, latency_ms: float, ok: bool = True) -> dict[str, Any]:
    return {"t": answered_at, "latency_ms": latency_ms, "ok": ok}


def test_the_load_window_runs_from_the_first_send_to_the_last_answer() -> None:
    ops = [op(100.05, 50.0), op(101.0, 10.0, ok=False), op(110.0, 500.0), op(104.0, 1.0)]
    assert rf.load_window(ops) == (3, 10.0)
    assert rf.load_window([]) == (0, 0.0)


def test_a_rung_reads_achieved_rate_from_its_writes_and_lag_from_its_result() -> None:
    # The runner's own load_s (here 12 s) is not used: it ends on a progress tick.
    result = scenario("bench_rate_200", writes_ok=1800, load_s=12.0, events_processed=1800,
                      lag_ms={"p50": 5.0, "p95": 20.0, "p99": 80.0, "max": 99.0})
    ops = [op(100.0 + i / 180, 0.0) for i in range(1801)]
    rung = rf.rung_from(plan.RUNG, 200.0, result, ops)
    assert (rung.achieved, rung.writes_ok, rung.load_s, rung.verdict) == (
        180.1, 1801, 10.0, "pass")
    assert rung.lag == figures.Percentiles(1800, 5.0, 20.0, 80.0)
    assert rung.sustains(100.0) and not rung.sustains(50.0)


def test_a_rung_short_of_its_rate_or_failed_does_not_sustain_it() -> None:
    lag = figures.Percentiles(10, 1.0, 1.0, 1.0)
    assert not rf.Rung(plan.RUNG, 400.0, 300.0, 3000, 10.0, lag, "pass").sustains(1000.0)
    assert not rf.Rung(plan.RUNG, 100.0, 100.0, 1000, 10.0, lag, "fail").sustains(1000.0)
    # Stopped before its writes were collected: nothing achieved.
    assert rf.rung_from(plan.RUNG, 100.0, scenario("x"), []).achieved == 0.0


def event(event_id: str, at: float) -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at": at}


def applied(event_id: str, at: float, outcome: str = "applied") -> dict[str, Any]:
    return {"event_id": event_id, "committed_at": at, "outcome": outcome}


def test_after_heal_counts_the_backlog_and_the_wait_for_its_first_row() -> None:
    fault = {"at": 10.0, "healed_at": 20.0, "recovery_s": 1.5}
    published = [event("a", 9.0), event("b", 12.0), event("c", 19.0), event("d", 21.0)]
    deliveries = [applied("a", 9.1), applied("b", 20.4, "dead_lettered"),
                  applied("b", 20.6), applied("c", 21.5), applied("d", 21.2)]
    heal = rf.after_heal(fault, published, deliveries)
    # a was applied before the heal; d was written after it; b's first processing is the
    # one that was not dead-lettered.
    assert heal == rf.AfterHeal(backlog=2, recovery_s=1.5, first_apply_s=0.6)


def test_after_heal_without_a_recovery_or_any_later_apply() -> None:
    heal = rf.after_heal({"healed_at": 20.0, "recovery_s": None}, [event("a", 19.0)], [])
    assert heal == rf.AfterHeal(1, None, None)


def test_drain_rate_is_the_backlog_over_the_time_to_apply_it() -> None:
    assert rf.drain_rate(rf.Outage("", 0, "pass", rf.AfterHeal(900, 0.5, 0.4))) == 1800.0
    assert rf.drain_rate(rf.Outage("", 0, "error", None)) is None
    assert rf.drain_rate(rf.Outage("", 0, "pass", rf.AfterHeal(900, None, 0.4))) is None
    assert rf.drain_rate(rf.Outage("", 0, "pass", rf.AfterHeal(0, 0.1, None))) is None


def test_recovery_per_fault_type_is_median_and_spread_of_the_repeats_with_a_figure() -> None:
    outages = [rf.Outage("kill:broker", 1, "pass", rf.AfterHeal(100, 0.4, 0.1)),
               rf.Outage("stop:broker", 1, "pass", rf.AfterHeal(50, 2.0, 0.1)),
               rf.Outage("kill:broker", 2, "pass", rf.AfterHeal(300, 1.0, 0.1)),
               rf.Outage("kill:broker", 3, "fail", rf.AfterHeal(200, 9.0, 0.1)),
               rf.Outage("kill:broker", 4, "error", None)]
    kill, stop = rf.summarise(outages)
    assert (kill.fault, kill.recovery_s, kill.repeats) == ("kill:broker", (0.4, 1.0, 9.0), 4)
    assert (kill.median_s, kill.backlog) == (1.0, 200)
    assert kill.to_dict()["min_s"] == 0.4 and kill.to_dict()["max_s"] == 9.0
    assert (stop.median_s, stop.repeats) == (2.0, 1)


def test_outage_from_reads_the_heal_from_the_scenarios_collected_files(
        tmp_path: Path) -> None:
    fault = {"fault": "kill:broker", "at": 10.0, "healed_at": 20.0, "recovery_s": 0.7}
    Collected(ops=[], source=[], replica=[], published=[event("a", 15.0)],
              deliveries=[applied("a", 20.7)], dead_letters=[], broker_dead_letters=0,
              faults=[fault], faults_planned=1, converged_after_s=0.1,
              converge_timeout_s=30.0, settle_s=1.0).save(tmp_path)
    built = plan.recovery("kill", "broker", 1)
    result = scenario(built.scenario.name)
    result.faults, result.report_dir = [fault], str(tmp_path)
    assert replication.outage_from(built, result).heal == rf.AfterHeal(1, 0.7, 0.7)
    # Stopped before collecting, or before its fault: no figure, and no error.
    result.report_dir = str(tmp_path / "missing")
    assert replication.outage_from(built, result).heal is None
    result.faults = []
    assert replication.outage_from(built, result).heal is None


# --- sections: pipeline / raw / ratio, against the targets --------------------------------


def raw_broker(rates: tuple[float, ...] = (100.0, 200.0)) -> RawBroker:
    return RawBroker("rabbitmq", "a private RabbitMQ node", 5000, (8000.0, 10000.0, 9000.0),
                     tuple(RawLatency(rate, 600, rate, figures.Percentiles(600, 1.0, 2.0, 4.0))
                           for rate in rates))


def rung(offered: float, achieved: float, p99: float, kind: str = plan.RUNG,
         verdict: str = "pass") -> rf.Rung:
    return rf.Rung(kind, offered, achieved, int(achieved * 6), 6.0,
                   figures.Percentiles(100, p99 / 4, p99 / 2, p99), verdict)


def test_raw_broker_figures() -> None:
    raw = raw_broker()
    assert raw.publish_consume_per_s == 9000.0
    assert raw.latency_at(200.0) is not None and raw.latency_at(400.0) is None
    lossy = RawBroker("kafka", "", 10, (1.0,), (RawLatency(
        100.0, 600, 99.0, figures.Percentiles(590, 1.0, 1.0, 1.0)),))
    assert lossy.lost == 10 and lossy.to_dict()["end_to_end_ms"][0]["lost"] == 10


def test_lag_is_held_to_its_target_at_200_only() -> None:
    section = rf.lag_section([rung(100.0, 100.0, 8.0), rung(200.0, 200.0, 16.0),
                              rung(2000.0, 300.0, 500.0, plan.SATURATION)], raw_broker())
    by_name = {c.name: c for c in section.comparisons}
    assert len(by_name) == 6  # p50/p95/p99 at 100 and 200; saturation has no raw rate
    assert (by_name["lag p99 at 200/s"].ratio, by_name["lag p99 at 200/s"].target,
            by_name["lag p99 at 200/s"].met) == (4.0, rf.LAG_TARGET, False)
    assert by_name["lag p99 at 100/s"].target == "" and not section.notes


def test_lag_without_a_rung_at_200_says_its_target_is_not_shown() -> None:
    section = rf.lag_section([rung(100.0, 100.0, 8.0)], raw_broker((100.0,)))
    assert all(not c.target for c in section.comparisons)
    assert "no rung at 200 writes/s" in section.notes[0]


def test_write_rate_target_applies_to_saturation_and_sustained_rate_is_stated() -> None:
    db = raw_db.DbRate("sqlite", 5000, 1.0)
    rungs = [rung(100.0, 99.0, 50.0), rung(200.0, 190.0, 900.0), rung(400.0, 300.0, 80.0),
             rung(2000.0, 2600.0, 3000.0, plan.SATURATION)]
    section = rf.write_section(rungs, db, bound_ms=1000.0)
    *per_rung, sustained = section.comparisons
    assert [c.target for c in per_rung] == ["", "", "", rf.WRITE_TARGET]
    assert (per_rung[-1].ratio, per_rung[-1].met) == (0.52, True)
    # 400 achieved 300 (< 90%), saturation's lag is over the bound: 200 is the highest.
    assert (sustained.value, sustained.raw, sustained.target) == (200.0, 5000.0, "")
    assert section.raw_label == "raw sqlite"


def test_no_sustained_rate_is_stated_as_such() -> None:
    section = rf.write_section([rung(100.0, 10.0, 50.0)], raw_db.DbRate("postgres", 10, 1.0),
                               1000.0)
    assert section.comparisons[-1].value == 0.0 and section.notes[0].endswith("no rung did")


def test_drain_is_held_to_half_the_raw_broker_rate() -> None:
    drain = rf.Outage("", 0, "pass", rf.AfterHeal(900, 0.2, 0.1))
    section = rf.drain_section(drain, raw_broker())
    (item,) = section.comparisons
    assert (item.value, item.raw, item.ratio, item.met) == (4500.0, 9000.0, 0.5, True)
    assert "the first row was applied 0.10 s after the heal, the rest at 9000" \
        in section.notes[0]
    missing = rf.drain_section(rf.Outage("", 0, "error", None), raw_broker())
    assert not missing.comparisons and "verdict error" in missing.notes[0]


def test_recovery_is_bound_by_five_seconds_plus_backlog_over_drain_rate() -> None:
    summaries = [rf.RecoverySummary("kill:broker", (2.0, 9.0, 3.0), 3, 2000.0),
                 rf.RecoverySummary("kill:consumer", (1.0,), 1, 500.0),
                 rf.RecoverySummary("pause:broker", (), 1, 0.0)]
    section = rf.recovery_section(summaries, drain_per_s=1000.0, raw=raw_broker())
    kill, consumer = section.comparisons
    assert (kill.value, kill.raw, kill.ratio, kill.target, kill.met) == (
        3.0, 7.0, 0.429, rf.RECOVERY_TARGET, True)
    assert (consumer.raw, consumer.target) == (5.5, "")
    assert section.notes[0].startswith("kill:broker: spread 2.00-9.00 s over 3 of 3")
    assert "backlog / drain rate 2.00 s" in section.notes[0]
    assert section.notes[-1] == "pause:broker: no recovery figure in 1 repeat(s)"


def test_recovery_without_a_drain_rate_shows_no_ratio() -> None:
    section = rf.recovery_section([rf.RecoverySummary("stop:broker", (1.0,), 1, 10.0)],
                                  None, raw_broker())
    assert section.comparisons[0].ratio is None and "drain rate unknown" in section.notes[0]


# --- the whole bench's output -------------------------------------------------------------


def bench(verdicts: dict[str, str], lost: bool = False) -> replication.ReplicationBench:
    raw = raw_broker()
    if lost:
        raw = RawBroker(raw.broker, raw.detail, raw.messages, raw.rounds, (RawLatency(
            200.0, 600, 200.0, figures.Percentiles(599, 1.0, 1.0, 1.0)),))
    db = raw_db.DbRate("sqlite", 5000, 1.0)
    rungs = (rung(200.0, 195.0, 12.0), rung(2000.0, 300.0, 90.0, plan.SATURATION))
    drain = rf.Outage("", 0, "pass", rf.AfterHeal(1000, 1.0, 0.8))
    outages = (rf.Outage("kill:broker", 1, "pass", rf.AfterHeal(2000, 2.5, 1.0)),)
    recovery = tuple(rf.summarise(outages))
    sections = (rf.lag_section(rungs, raw), rf.write_section(rungs, db, 1000.0),
                rf.drain_section(drain, raw), rf.recovery_section(recovery, 1000.0, raw))
    return replication.ReplicationBench(
        "rabbitmq", "sqlite", plan.plan_for(True, None, 1), 1000.0, raw, db, rungs, drain,
        outages, recovery, sections, verdicts, "reports/bench-x/pipeline")


def test_report_lines_give_raw_parts_rungs_and_every_section() -> None:
    lines = replication.report_lines(bench({"bench_rate_200": "pass"}))
    text = "\n".join(lines)
    assert lines[1] == ("raw broker publish+consume: 9000 msg/s (5000 messages, batched "
                        "confirms); raw sqlite: 5000 single-row transactions/s")
    assert "     200 ->   195.0       3.0      6.0     12.0  pass" in lines
    assert "lag p99 at 200/s: pipeline 12.0 ms / raw broker 4.0 ms / ratio 3.00 " \
           "(target <= 3: met)" in text
    assert "drain: pipeline 1000.0 msg/s / raw broker 9000.0 msg/s / ratio 0.11 " \
           "(target >= 0.5: NOT met)" in text
    assert "kill:broker recovery, median of 1: pipeline 2.5 s / 5 s + backlog/drain 7.0 s" \
        in text
    assert "did not pass" not in text


def test_report_names_scenarios_that_did_not_pass_and_a_lossy_raw_consumer() -> None:
    data = bench({"bench_rate_200": "pass", "bench_drain": "fail",
                  "bench_kill_consumer_1": "not_applicable"}, lost=True)
    text = "\n".join(replication.report_lines(data))
    assert "did not pass (their figures measure something else): bench_drain fail" in text
    assert "bench_kill_consumer_1" not in text
    assert "the raw consumer missed 1 message(s)" in text
    assert not data.all_passed


def test_bench_json_holds_every_figure() -> None:
    data = json.loads(json.dumps(bench({"bench_rate_200": "pass"}).to_dict()))
    assert data["bench"] == "replication" and data["plan"]["rates"] == [100.0, 200.0]
    assert data["raw"]["db"]["per_s"] == 5000.0
    assert data["drain"]["per_s"] == 1000.0
    assert data["recovery"][0]["median_s"] == 2.5
    assert [s["title"].split()[0] for s in data["sections"]] == [
        "Replication", "Publisher", "Drain", "Recovery"]
    assert data["sections"][2]["comparisons"][0]["target"] == rf.DRAIN_TARGET


def test_progress_lines_name_the_scenario_and_its_place() -> None:
    lines: list[str] = []
    printer = replication._Printer(["bench_rate_100", "bench_drain"], lines.append, 0.0)
    printer("bench_drain", "load 50%")
    printer("bench_drain", "@verdict pass")
    assert lines[0].endswith("2/2 bench_drain] load 50%")
    assert lines[1].endswith("2/2 bench_drain] verdict: pass")


# --- the CLI ------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    (["--rates", "100,0"], "--rates: must be positive write rates"),
    (["--rates", "100,x"], "--rates: not a list of numbers"),
    (["--lag-bound-ms", "0"], "--lag-bound-ms: must be > 0"),
    (["--repeats", "0"], "--repeats: must be >= 1")])
def test_bench_replication_refuses_bad_options_before_starting_anything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str],
        message: str) -> None:
    assert cli.main(["bench", "replication", *options, "--report-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_bench_replication_is_a_broker_bench() -> None:
    assert "replication" in cli.BROKER_BENCHES
    args = cli.build_parser().parse_args(["bench", "replication", "--quick", "--db",
                                          "postgres", "--rates", "50,100"])
    assert (args.quick, args.db, args.rates, args.lag_bound_ms) == (True, "postgres",
                                                                    "50,100", 1000.0)


def test_a_small_ratio_keeps_its_significant_digits() -> None:
    item = figures.compare("writes", "writes/s", 180.0, 40000.0, ">= 0.5")
    assert "ratio 0.004 (target >= 0.5: NOT met)" in figures.format_comparison(
        item, "publisher", "raw sqlite")
    assert figures.format_comparison(figures.compare("x", "s", 0.0, 5.0), "a", "b") \
        .endswith("ratio 0.00")
