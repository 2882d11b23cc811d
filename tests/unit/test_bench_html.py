"""Unit tests of the bench page: the figures and series read out of bench.json (pure
functions, on bench.json files of real runs), then the page, its writing beside bench.json
and `harness report <bench folder>`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.bench import figures
from harness.cli import main
from harness.reporting.bench_html import (
    INDEX,
    DrainBars,
    PercentileBar,
    RungPoint,
    bench_figures,
    drain_bars,
    lag_bars,
    lag_curve,
    load_bench,
    pipeline_href,
    recovery_bars,
    render_bench_html,
    render_bench_text,
)
from tests.bench_data import LAG, PROXY, REPLICATION, TAP, bench_data, bench_folder, resync_data

# -- the figures -----------------------------------------------------------------------------


def test_every_replication_figure_is_listed_not_met_first() -> None:
    found = bench_figures(bench_data(REPLICATION))
    assert len(found) == 16  # 6 lag, 4 write rate, 1 drain, 5 recovery
    assert [(f.name, f.met) for f in found[:4]] == [
        ("lag p99 at 200/s", False), ("writes committed at 2000/s offered", False),
        ("drain", False), ("kill:broker recovery, median of 1", True)]
    assert [f.met for f in found] == [False] * 3 + [True] * 3 + [None] * 10
    drain = found[2]
    assert (drain.value, drain.raw, drain.ratio, drain.target) == (941.8, 9575.9, 0.098,
                                                                   ">= 0.5")
    # Each section's own labels and title.
    assert (drain.value_label, drain.raw_label) == ("pipeline", "raw broker")
    assert (found[1].value_label, found[1].raw_label) == ("publisher", "raw sqlite")
    assert found[1].section == "Publisher write rate vs raw sqlite single-row insert " \
        "transactions"


def test_figures_of_a_bench_without_sections_take_its_labels() -> None:
    proxy = bench_figures(bench_data(PROXY))
    assert [(f.name, f.section, f.value_label, f.raw_label, f.met) for f in proxy] == [
        ("produce+consume throughput", "", "proxied", "direct", True),
        ("produce round trip p50", "", "proxied", "direct", None),
        ("produce round trip p99", "", "proxied", "direct", None)]
    assert [f.value_label for f in bench_figures(bench_data(LAG))] == ["pipeline"] * 3
    assert bench_figures(bench_data(TAP)) == []


def test_resync_figures_are_found_where_they_sit_per_id_ones_without_raw() -> None:
    found = bench_figures(resync_data())
    assert [(f.section, f.name, f.met) for f in found] == [
        ("under_load / full", "full resync of 100000 rows", False),  # 4x the raw copy
        ("under_load / partial", "partial resync of 100 ids", False),
        ("idle / full", "full resync of 100000 rows", True),
        ("idle / partial", "partial resync of 100 ids", True)]
    per_id = found[1]
    assert (per_id.value, per_id.raw, per_id.ratio, per_id.unit, per_id.target) == \
        (0.21, None, None, "ms per id", "<= 0.1")


# -- replication's curves --------------------------------------------------------------------


def test_lag_curve_has_every_rung_the_raw_p99_per_rate_and_the_bound() -> None:
    curve = lag_curve(bench_data(REPLICATION))
    assert curve is not None
    assert curve.rungs == [RungPoint("rung", 100.0, 98.3, 4.84, 8.51, 13.7),
                           RungPoint("rung", 200.0, 196.4, 6.34, 24.56, 64.06),
                           RungPoint("saturation", 2000.0, 318.4, 21.56, 89.75, 182.37)]
    assert curve.raw_p99 == [(100.0, 3.628), (200.0, 2.047)]
    assert curve.bound_ms == 1000.0


def test_lag_curve_skips_a_rung_without_figures_and_is_none_without_rungs() -> None:
    data = bench_data(REPLICATION)
    del data["rungs"][0]["lag"]["p99"]
    del data["raw"]
    curve = lag_curve(data)
    assert curve is not None
    assert [r.offered for r in curve.rungs] == [200.0, 2000.0]
    assert curve.raw_p99 == []
    assert lag_curve(bench_data(LAG)) is None


def test_recovery_bars_give_median_spread_and_backlog_over_the_drain_rate() -> None:
    data = bench_data(REPLICATION)
    data["recovery"][0].update(recovery_s=[0.9, 1.037, 1.5], min_s=0.9, max_s=1.5)
    data["recovery"][1].update(recovery_s=[], median_s=None, min_s=None, max_s=None)
    bars = recovery_bars(data)
    assert [b.fault for b in bars] == ["kill:broker", "pause:broker", "kill:consumer",
                                       "link_down:consumer_broker"]
    kill = bars[0]
    assert (kill.median_s, kill.min_s, kill.max_s, kill.repeats, kill.backlog) == \
        (1.037, 0.9, 1.5, 3, 2625)
    assert kill.drain_s == round(2625 / 941.8, 3)
    data["drain"]["per_s"] = None  # the drain had no figure
    assert [b.drain_s for b in recovery_bars(data)] == [None] * 4


def test_drain_bars_set_the_drain_against_the_raw_broker_with_its_target() -> None:
    data = bench_data(REPLICATION)
    assert drain_bars(data) == DrainBars(941.8, 9575.9, ">= 0.5")
    data["drain"]["per_s"] = None
    assert drain_bars(data) is None


def test_lag_bars_pair_pipeline_and_raw_per_percentile() -> None:
    assert lag_bars(bench_data(LAG)) == [PercentileBar("p50", 259.69, 340.743),
                                        PercentileBar("p95", 502.27, 553.317),
                                        PercentileBar("p99", 592.14, 674.356)]
    assert lag_bars(bench_data(REPLICATION)) == []


# -- files -----------------------------------------------------------------------------------


def test_pipeline_link_is_the_folders_own_report_when_there(tmp_path: Path) -> None:
    data = bench_data(REPLICATION)  # pipeline_report names another machine's folder
    folder = bench_folder(tmp_path / "a", data)
    assert pipeline_href(data, folder) == "pipeline/index.html"
    assert pipeline_href(data, bench_folder(tmp_path / "b", data, pipeline=False)) is None
    # A report folder named relative to the bench folder, one level down.
    nested = bench_folder(tmp_path / "c", data, pipeline=False)
    (nested / "pipeline" / "20261130-run").mkdir(parents=True)
    (nested / "pipeline" / "20261130-run" / INDEX).write_text("<title>run</title>")
    assert pipeline_href(data, nested) == "pipeline/20261130-run/index.html"


def test_load_bench_names_a_file_that_is_not_a_bench(tmp_path: Path) -> None:
    (tmp_path / "bench.json").write_text("[1, 2]")
    with pytest.raises(Exception, match="not a JSON object"):
        load_bench(tmp_path)


# -- the page --------------------------------------------------------------------------------


def test_replication_page_has_its_four_charts_and_not_met_rows_first(tmp_path: Path) -> None:
    data = bench_data(REPLICATION)
    page = render_bench_html(data, bench_folder(tmp_path, data))
    assert page.count("<svg") == 4
    rows = re.findall(r'<tr class="figure figure-([a-z-]+)">', page)
    assert rows == ["not-met"] * 3 + ["met"] * 3 + ["none"] * 10
    assert "offered writes / s" in page and "lag bound 1000 ms" in page
    assert "raw broker end-to-end p99" in page and "backlog / drain rate" in page
    assert '<a href="pipeline/index.html">' in page
    assert "http" not in page.replace("http://www.w3.org", "")  # nothing to fetch


@pytest.mark.parametrize(("name", "charts"), [(LAG, 1), (PROXY, 0), (TAP, 0)])
def test_other_benches_have_their_bars_or_the_table_only(tmp_path: Path, name: str,
                                                          charts: int) -> None:
    data = bench_data(name)
    page = render_bench_html(data, bench_folder(tmp_path, data, pipeline=False))
    assert page.count("<svg") == charts
    assert page.count('<tr class="figure ') == len(bench_figures(data))


def test_text_from_the_data_is_escaped(tmp_path: Path) -> None:
    data = bench_data(PROXY)
    data["comparisons"][0]["name"] = "<script>alert(1)</script>"
    data["broker_detail"] = "a & b"
    page = render_bench_html(data, bench_folder(tmp_path, data, pipeline=False))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b" in page


def test_saving_a_bench_writes_its_page_from_bench_json(tmp_path: Path) -> None:
    data = bench_data(LAG)
    saved = figures.save(tmp_path, data)
    assert saved == tmp_path / "bench.json"
    assert json.loads(saved.read_text()) == data
    assert (tmp_path / INDEX).read_text() == render_bench_html(data, tmp_path)
    assert not (tmp_path / "index.html.tmp").exists()


def test_report_html_draws_a_stored_bench_again(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = bench_data(REPLICATION)
    folder = bench_folder(tmp_path, data)
    assert main(["report", str(folder), "--html"]) == 0
    assert capsys.readouterr().out == f"report: {folder / INDEX}\n"
    assert (folder / INDEX).read_text() == render_bench_html(data, folder)
    assert main(["report", str(folder / "bench.json")]) == 0
    printed = capsys.readouterr().out
    assert printed == render_bench_text(data)
    assert printed.splitlines()[1] == ("lag p99 at 200/s: pipeline 64.06 ms / raw broker "
                                       "2.047 ms / ratio 31.295 (target <= 3: NOT met)")
