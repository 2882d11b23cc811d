"""The bench page's charts as inline SVG, in the run report's style (harness/reporting/
charts.py: matplotlib's object API, text kept as text). Each takes the plain series
harness/reporting/bench_html.py reads out of bench.json.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from harness.reporting.bench_html import DrainBars, LagCurve, PercentileBar, RecoveryBar
from harness.reporting.charts import figure_svg, legend_above, svg_style

_PERCENTILE_COLOURS = {"p50": "#1f77b4", "p95": "#ff7f0e", "p99": "#d62728"}
_RAW = "#7f7f7f"
_BOUND = "#2ca02c"
_PIPELINE = "#1f77b4"
# An axis spanning more than this factor is drawn on a log scale: a saturation rung at
# 2000/s beside rungs at 50-400/s, or a raw broker p99 of 2 ms beside a 1000 ms bound.
_LOG_SPAN = 8.0


def lag_curve_svg(curve: LagCurve, salt: str) -> str:
    """Lag p50/p95/p99 per offered rate (the saturation rung as open markers, apart from
    the curve), the raw broker's p99 per rate dashed, the lag bound as a line."""
    with svg_style(salt):
        figure = Figure(figsize=(8, 4), layout="constrained")
        axes = figure.subplots()
        ladder = [r for r in curve.rungs if r.kind != "saturation"]
        for name, colour in _PERCENTILE_COLOURS.items():
            if ladder:
                axes.plot([r.offered for r in ladder], [getattr(r, name) for r in ladder],
                          marker="o", color=colour, label=f"lag {name}")
            for rung in curve.rungs:
                if rung.kind == "saturation":
                    axes.plot([rung.offered], [getattr(rung, name)], marker="o",
                              fillstyle="none", linestyle="none", color=colour)
        for rung in curve.rungs:
            if rung.kind == "saturation":
                axes.annotate(f"saturation: {rung.achieved:g}/s achieved",
                              (rung.offered, rung.p99), textcoords="offset points",
                              xytext=(-4, 6), ha="right", fontsize=7.5)
        if curve.raw_p99:
            axes.plot(*zip(*curve.raw_p99, strict=True), marker="s", linestyle="--",
                      color=_RAW, label="raw broker end-to-end p99")
        if curve.bound_ms is not None:
            axes.axhline(curve.bound_ms, color=_BOUND, linestyle=":",
                         label=f"lag bound {curve.bound_ms:g} ms")
        rates = sorted({r.offered for r in curve.rungs} | {r for r, _ in curve.raw_p99})
        _rate_axis(axes, rates, "offered writes / s")
        values = [v for r in curve.rungs for v in (r.p50, r.p95, r.p99)]
        values += [p for _, p in curve.raw_p99]
        values += [] if curve.bound_ms is None else [curve.bound_ms]
        _value_axis(axes, values, "replication lag (ms)")
        legend_above(axes)
        return figure_svg(figure)


def write_rate_svg(curve: LagCurve, salt: str) -> str:
    """Achieved against offered write rate per rung, beside the line achieved = offered."""
    with svg_style(salt):
        figure = Figure(figsize=(8, 3.6), layout="constrained")
        axes = figure.subplots()
        rates = [r.offered for r in curve.rungs]
        axes.plot(rates, rates, linestyle="--", color=_RAW, label="achieved = offered")
        axes.plot(rates, [r.achieved for r in curve.rungs], marker="o", color=_PIPELINE,
                  label="achieved by the publisher")
        for rung in curve.rungs:
            axes.annotate(f"{rung.achieved:g}", (rung.offered, rung.achieved),
                          textcoords="offset points", xytext=(4, -10), fontsize=7.5)
        _rate_axis(axes, rates, "offered writes / s")
        _value_axis(axes, [*rates, *(r.achieved for r in curve.rungs)], "writes / s",
                    log=_spans(rates))
        legend_above(axes)
        return figure_svg(figure)


def recovery_svg(bars: Sequence[RecoveryBar], salt: str) -> str:
    """Per fault type: median recovery with the repeats' spread as error bars, and the
    backlog at the heal over the drain rate beside it."""
    with svg_style(salt):
        figure = Figure(figsize=(8, 3.8), layout="constrained")
        axes = figure.subplots()
        width = 0.38
        xs = range(len(bars))
        axes.bar([x - width / 2 for x in xs], [b.median_s for b in bars], width,
                 yerr=[[b.median_s - b.min_s for b in bars], [b.max_s - b.median_s for b in bars]],
                 capsize=3, color=_PIPELINE, label="recovery (median, min-max)")
        drained = [(x, b.drain_s) for x, b in zip(xs, bars, strict=True) if b.drain_s is not None]
        if drained:
            axes.bar([x + width / 2 for x, _ in drained], [s for _, s in drained], width,
                     color=_RAW, label="backlog / drain rate")
        axes.set_xticks(list(xs), labels=[f"{b.fault}\nbacklog {b.backlog:.0f}, n={b.repeats}"
                                          for b in bars], fontsize=7.5)
        axes.set_ylabel("seconds after the heal")
        axes.grid(True, axis="y", alpha=0.3)
        legend_above(axes)
        return figure_svg(figure)


def drain_svg(drain: DrainBars, salt: str) -> str:
    """The drain rate and the raw broker's publish+consume rate, with the target's share
    of the raw rate as a line."""
    with svg_style(salt):
        figure = Figure(figsize=(8, 1.9), layout="constrained")
        axes = figure.subplots()
        axes.barh([1, 0], [drain.drain_per_s, drain.raw_per_s], color=[_PIPELINE, _RAW])
        axes.set_yticks([1, 0], labels=["pipeline drain", "raw broker publish+consume"])
        for y, value in ((1, drain.drain_per_s), (0, drain.raw_per_s)):
            axes.annotate(f" {value:,.0f}/s", (value, y), va="center", fontsize=7.5)
        bound, _, share = drain.target.partition(" ")
        if share:
            axes.axvline(float(share) * drain.raw_per_s, color=_BOUND, linestyle=":",
                         label=f"target: drain {bound} {share} of raw")
            legend_above(axes)
        axes.set_xlabel("messages / s")
        axes.set_xlim(0, drain.raw_per_s * 1.15)
        axes.grid(True, axis="x", alpha=0.3)
        return figure_svg(figure)


def lag_bars_svg(bars: Sequence[PercentileBar], salt: str) -> str:
    """`harness bench lag`: pipeline lag and raw end to end, side by side per percentile."""
    with svg_style(salt):
        figure = Figure(figsize=(8, 3.4), layout="constrained")
        axes = figure.subplots()
        width = 0.38
        xs = range(len(bars))
        axes.bar([x - width / 2 for x in xs], [b.pipeline_ms for b in bars], width,
                 color=_PIPELINE, label="pipeline replication lag")
        axes.bar([x + width / 2 for x in xs], [b.raw_ms for b in bars], width, color=_RAW,
                 label="raw broker end to end")
        axes.set_xticks(list(xs), labels=[b.name for b in bars])
        axes.set_ylabel("ms")
        axes.grid(True, axis="y", alpha=0.3)
        legend_above(axes)
        return figure_svg(figure)


def _spans(values: Sequence[float]) -> bool:
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > _LOG_SPAN


def _rate_axis(axes: Axes, rates: Sequence[float], label: str) -> None:
    """Ticks at the rates measured, on a log scale when they span widely."""
    if _spans(rates):
        axes.set_xscale("log")
        axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xticks(list(rates), labels=[f"{r:g}" for r in rates])
    axes.set_xlabel(label)


def _value_axis(axes: Axes, values: Sequence[float], label: str,
                log: bool | None = None) -> None:
    if _spans(values) if log is None else log:
        axes.set_yscale("log")
    else:
        axes.set_ylim(bottom=0)
    axes.set_ylabel(label)
    axes.grid(True, alpha=0.3)
