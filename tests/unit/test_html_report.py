"""Unit tests of the HTML report: the timeline series (pure functions), then the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.reporting import load_run_json
from harness.reporting.html import INDEX, render_html, write_html
from harness.reporting.timeline import (
    FaultWindow,
    TimelineUnavailable,
    bin_width,
    build_timeline,
    fault_windows,
    first_processings,
    lag_series,
    rate_series,
    read_timeline,
)
from tests.report_data import PAUSE, RECOVERY_S, build_run

# -- the series ------------------------------------------------------------------------------


def test_bin_width_keeps_a_chart_to_a_few_hundred_points() -> None:
    assert bin_width(0.0) == 0.25
    assert bin_width(20.0) == 0.25
    assert bin_width(300.0) == 1.0
    assert bin_width(1000.0) == 3.5  # 1000 / 300 = 3.33, up to a quarter second


def test_first_processings_keeps_each_events_first_timed_delivery() -> None:
    deliveries = [
        {"event_id": "a", "occurred_at": 1.0, "committed_at": 1.1, "outcome": "applied"},
        {"event_id": "a", "occurred_at": 1.0, "committed_at": 9.0, "outcome": "deduplicated"},
        {"event_id": None, "occurred_at": 0.0, "committed_at": 0.0, "outcome": "dead_lettered"},
        {"event_id": "b", "occurred_at": "garbled", "committed_at": 2.0},
        {"event_id": "c", "occurred_at": 2.0, "committed_at": True},
    ]
    assert [d["committed_at"] for d in first_processings(deliveries)] == [1.1]


def test_lag_series_is_the_worst_lag_by_write_time_clamped_at_zero() -> None:
    firsts = [{"occurred_at": 10.0, "committed_at": 10.1},
              {"occurred_at": 10.2, "committed_at": 10.5},  # same bin, worse
              {"occurred_at": 11.0, "committed_at": 10.9}]  # clock skew: not negative
    assert lag_series(firsts, origin=10.0, bin_s=0.5) == \
        [(0.0, pytest.approx(0.3)), (1.0, 0.0)]


def test_rate_series_counts_per_second_and_shows_a_stall_as_zero() -> None:
    times = [0.0, 0.1, 0.2, 0.3, 1.6]
    assert rate_series(times, origin=0.0, bin_s=0.5) == \
        [(0.0, 8.0), (0.5, 0.0), (1.0, 0.0), (1.5, 2.0)]
    assert rate_series([], origin=0.0, bin_s=0.5) == []


def test_fault_windows_from_the_runs_assessment_with_recovery() -> None:
    assessed = [{"fault": "pause:broker", "target": "broker", "at": 103.0,
                 "healed_at": 108.0, "recovery_s": 0.5, "impact": "lag rose"},
                {"fault": "latency:relay_broker:downstream", "target": "relay_broker",
                 "at": 101.0, "healed_at": 102.0, "recovery_s": None}]
    assert fault_windows(assessed, [], origin=100.0) == [
        FaultWindow("latency:relay_broker:downstream", "relay_broker", 1.0, 2.0, None, ""),
        FaultWindow("pause:broker", "broker", 3.0, 8.0, 8.5, "lag rose")]


def test_fault_windows_fall_back_to_the_history_without_recovery() -> None:
    recorded = [{"fault": "kill:consumer", "target": "consumer", "at": 102.0,
                 "healed_at": 104.0, "recovery_s": 1.0},
                {"fault": "garbled", "at": "soon"}]
    assert fault_windows([], recorded, origin=100.0) == \
        [FaultWindow("kill:consumer", "consumer", 2.0, 4.0, None, "")]


def test_build_timeline_starts_at_the_first_acknowledged_write() -> None:
    history = [{"t": 50.0, "kind": "scenario"},
               {"t": 100.0, "kind": "op", "ok": True},
               {"t": 100.3, "kind": "op", "ok": False},  # a failed write is not throughput
               {"t": 100.6, "kind": "op", "ok": True}]
    deliveries = [{"event_id": "a", "occurred_at": 99.99, "committed_at": 100.7}]
    timeline = build_timeline(history, deliveries, [])
    assert timeline.bin_s == 0.25
    assert timeline.writes == [(0.0, 4.0), (0.25, 0.0), (0.5, 4.0)]
    assert timeline.applied == [(0.5, 4.0)]
    assert timeline.lag == [(-0.25, pytest.approx(0.71))]
    assert timeline.faults == []


def test_build_timeline_of_nothing_is_unavailable() -> None:
    with pytest.raises(TimelineUnavailable, match="no acknowledged write and no delivery"):
        build_timeline([{"t": 1.0, "kind": "scenario"}], [], [])


def test_read_timeline_of_the_stored_pause_shows_lag_in_the_window(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path)
    stored = load_run_json(run_dir / "run.json")["scenarios"][1]
    timeline = read_timeline(run_dir / "broker_outage_pause", stored["faults"])
    (window,) = timeline.faults
    assert (window.label, window.start_s, window.end_s) == \
        ("pause:broker", pytest.approx(PAUSE[0]), pytest.approx(PAUSE[1]))
    assert window.recovered_s == pytest.approx(PAUSE[1] + RECOVERY_S)
    inside = [lag for t, lag in timeline.lag if PAUSE[0] + 0.5 <= t < PAUSE[1] - 0.5]
    outside = [lag for t, lag in timeline.lag if t < PAUSE[0] - 0.5 or t > PAUSE[1] + 1]
    assert min(inside) > 0.5 and max(outside) < 0.01
    assert timeline.writes[0] == (0.0, 200.0)


@pytest.mark.parametrize(("content", "reason"), [
    (None, "history.jsonl is missing"),
    ('{"t": 1, "kind": "op", "ok": true}\n{garbled\n', "history.jsonl line 2 is not JSON"),
    ("[1, 2]\n", "history.jsonl line 1 is not an object"),
])
def test_read_timeline_names_what_is_wrong_with_the_history(
        tmp_path: Path, content: str | None, reason: str) -> None:
    if content is not None:
        (tmp_path / "history.jsonl").write_text(content)
    with pytest.raises(TimelineUnavailable) as info:
        read_timeline(tmp_path, [])
    assert str(info.value) == reason


def test_read_timeline_rejects_garbled_deliveries(tmp_path: Path) -> None:
    (tmp_path / "history.jsonl").write_text('{"t": 1, "kind": "op", "ok": true}\n')
    (tmp_path / "deliveries.json").write_text('{"not": "a list"}')
    with pytest.raises(TimelineUnavailable, match=r"deliveries\.json is not a list"):
        read_timeline(tmp_path, [])


# -- the page ---------------------------------------------------------------------------------


def _page(tmp_path: Path) -> tuple[Path, str]:
    run_dir = build_run(tmp_path)
    return run_dir, render_html(load_run_json(run_dir / "run.json"), run_dir)


def test_page_lists_failures_first_then_errors_then_passes(tmp_path: Path) -> None:
    _run_dir, page = _page(tmp_path)
    sections = [page.index(f'id="scenario-{n}"')
                for n in ("broker_outage_pause", "broken", "steady_state")]
    assert sections == sorted(sections)
    # Within the failed scenario, its failed check comes before those that passed.
    section = page[sections[0]:sections[1]]
    assert section.index("no_lost_updates") < section.index("progress") \
        < section.index("convergence")
    assert 'class="check check-fail"' in section


def test_page_escapes_the_data_and_shows_replay_outcomes_and_logs(tmp_path: Path) -> None:
    _run_dir, page = _page(tmp_path)
    assert "&lt;e1&gt;, &lt;e2&gt;" in page and "<e1>" not in page
    assert ('<pre id="replay"><code>harness run broker_outage_pause broken --seed 7 '
            "--broker rabbitmq --runtime processes --variant none</code></pre>") in page
    assert "<td>deduplicated</td><td>1</td>" in page
    assert "<td>dead_lettered</td><td>0</td>" in page
    assert 'href="broker_outage_pause/broker/rabbitmq.log"' in page
    assert 'href="broker_outage_pause/consumer.log"' in page


def test_page_charts_each_timeline_and_labels_the_fault(tmp_path: Path) -> None:
    _run_dir, page = _page(tmp_path)
    assert page.count("<svg") == 2  # steady_state and broker_outage_pause
    # Nothing to fetch: no script, stylesheet, image or font from anywhere.
    assert not any(tag in page for tag in ("<script", "<link", " src=", "@import"))
    assert set(re.findall(r"url\(([^)]*)\)", page)) <= {  # only the charts' own clip paths
        f"#{i}" for i in re.findall(r'<clipPath id="([^"]+)"', page)}
    section = page[page.index('id="scenario-broker_outage_pause"'):
                   page.index('id="scenario-broken"')]
    assert "pause:broker" in section[section.index("<svg"):section.index("</svg>")]
    assert "recovered" in section
    assert '<tr class="fault"><td>pause:broker</td><td>broker</td><td>3.00</td>' \
        "<td>8.00</td><td>8.30</td>" in section


def test_page_says_no_timeline_when_the_history_is_missing_or_garbled(
        tmp_path: Path) -> None:
    run_dir = build_run(tmp_path)
    (run_dir / "steady_state" / "history.jsonl").write_text("{garbled\n")
    page = render_html(load_run_json(run_dir / "run.json"), run_dir)
    assert page.count("<svg") == 1
    assert "no timeline recorded (history.jsonl line 1 is not JSON)" in page
    assert "no timeline recorded (history.jsonl is missing)" in page  # broken: none at all


def test_harness_report_html_renders_a_stored_run_again(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    run_dir = build_run(tmp_path)
    assert not (run_dir / INDEX).exists()
    assert main(["report", str(run_dir), "--html"]) == 0
    assert capsys.readouterr().out == f"report: {run_dir / INDEX}\n"
    page = (run_dir / INDEX).read_text()
    assert page == render_html(load_run_json(run_dir / "run.json"), run_dir)
    assert not (run_dir / "index.html.tmp").exists()


def test_write_html_is_cheap_the_second_time(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path)
    run = json.loads((run_dir / "run.json").read_text())
    first = write_html(run, run_dir).read_text()
    # The same files draw the same charts: the run's rewrite after each scenario reuses
    # them (and a changed history would be drawn again).
    assert write_html(run, run_dir).read_text() == first
    (run_dir / "steady_state" / "history.jsonl").write_text("{garbled\n")
    assert "no timeline recorded" in write_html(run, run_dir).read_text()
