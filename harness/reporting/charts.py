"""A scenario's timeline as an inline SVG: replication lag above, throughput below, fault
windows shaded and labelled on both, the moment replication recovered marked.

Drawn with matplotlib's object API (a Figure of its own, never pyplot's global state or a
display), saved by its SVG backend. Text stays text
(`svg.fonttype: none`), so the page needs no embedded fonts and its labels are searchable
and readable from the DOM.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.reporting.timeline import FaultWindow, Timeline

_FAULT_COLOURS = ("#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22")
_RECOVERED = "#2ca02c"


def timeline_svg(timeline: Timeline, salt: str) -> str:
    """The chart as an `<svg>` element for inlining in HTML. `salt` makes the element ids
    matplotlib generates (clip paths) unique to this chart within one page."""
    with svg_style(salt):
        figure = Figure(figsize=(10, 4.8), layout="constrained")
        lag_axes, rate_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        _draw_lag(lag_axes, timeline)
        _draw_rates(rate_axes, timeline)
        for index, window in enumerate(timeline.faults):
            colour = _FAULT_COLOURS[index % len(_FAULT_COLOURS)]
            _shade(lag_axes, window, colour, label=True)
            _shade(rate_axes, window, colour, label=False)
        rate_axes.set_xlabel("seconds since the load started")
        return figure_svg(figure)


@contextmanager
def svg_style(salt: str) -> Iterator[None]:
    """The reports' chart style; draw and save a figure inside it. `salt` makes the
    element ids matplotlib generates (clip paths) unique to the chart within one page."""
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": salt, "font.size": 9,
                     "font.family": "sans-serif"}):
        yield


def figure_svg(figure: Figure) -> str:
    """`figure` as an `<svg>` element for inlining in HTML (call within `svg_style`)."""
    buffer = io.StringIO()
    # No metadata block: no date (the same data draw the same page), no links.
    figure.savefig(buffer, format="svg",
                   metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML prolog and doctype: HTML5 inlines it


def _draw_lag(axes: Axes, timeline: Timeline) -> None:
    axes.set_ylabel("replication lag (s)")
    axes.grid(True, alpha=0.3)
    if timeline.lag:
        xs, ys = zip(*timeline.lag, strict=True)
        axes.plot(xs, ys, color="#1f77b4", linewidth=1.2,
                  label=f"worst lag of the events written in each {timeline.bin_s:g} s")
        legend_above(axes)
    else:
        axes.text(0.5, 0.5, "no delivery recorded", transform=axes.transAxes,
                  ha="center", va="center", color="#666666")
    axes.set_ylim(bottom=0)


def _draw_rates(axes: Axes, timeline: Timeline) -> None:
    axes.set_ylabel("events / s")
    axes.grid(True, alpha=0.3)
    for series, colour, label in ((timeline.writes, "#7f7f7f", "writes acknowledged"),
                                  (timeline.applied, "#1f77b4", "events applied")):
        if series:
            xs, ys = zip(*series, strict=True)
            axes.step(xs, ys, where="post", color=colour, linewidth=1.0, label=label)
    axes.set_ylim(bottom=0)
    if timeline.writes or timeline.applied:
        legend_above(axes)


def legend_above(axes: Axes) -> None:
    # Above the plot, right-aligned: inside it would hide the fault labels and the data.
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=8,
                frameon=False, borderaxespad=0.2)


def _shade(axes: Axes, window: FaultWindow, colour: str, label: bool) -> None:
    # A fault that acts in an instant (e.g. poison sent) still gets a visible band.
    end = max(window.end_s, window.start_s + 0.05)
    axes.axvspan(window.start_s, end, color=colour, alpha=0.15, linewidth=0)
    if window.recovered_s is not None:
        axes.axvline(window.recovered_s, color=_RECOVERED, linestyle="--", linewidth=1.0)
    if not label:
        return
    text = window.label if window.target in window.label else \
        f"{window.label} ({window.target})"
    axes.text(window.start_s, 0.98, f" {text}", transform=axes.get_xaxis_transform(),
              rotation=90, va="top", ha="left", fontsize=7.5, color=colour, clip_on=True)
    if window.recovered_s is not None:
        axes.text(window.recovered_s, 0.02, " recovered", transform=axes.get_xaxis_transform(),
                  rotation=90, va="bottom", ha="left", fontsize=7, color=_RECOVERED)
