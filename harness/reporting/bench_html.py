"""index.html beside a bench's bench.json: the bench's figures for people, one page.

Rendered from bench.json alone (the pipeline scenarios' own report is linked when its
folder is there), so `harness report <bench folder> --html` draws a stored bench again.
Like the run's page (harness/reporting/html.py) it holds its style and its charts (inline
SVG) and opens from disk with no server and no network; every text taken from the data
is escaped.

Every figure any bench states as value / raw / ratio (figures.Comparison, wherever it sits
in bench.json) is in one table, the figures that miss their target first. `replication`
adds its curves (lag against the offered rate, achieved against offered write rate,
recovery per fault type, drain against the raw broker), `lag` its percentiles as bars;
the other benches have the table only.

The functions that read the figures out of bench.json are pure; only `load_bench`,
`pipeline_href` and `write_bench_html` touch files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.errors import SetupError

BENCH_JSON = "bench.json"
INDEX = "index.html"

# What a bench compares its figures with, when bench.json does not say (replication's
# sections do): the proxy bench sets proxied against direct, the others the pipeline
# against a raw part.
_LABELS = {"proxy": ("proxied", "direct"), "lag": ("pipeline", "raw broker")}
_DEFAULT_LABELS = ("pipeline", "raw")
_COMPARISON_KEYS = frozenset({"name", "unit", "value", "raw", "ratio"})
_PASSED = ("pass", "not_applicable")


@dataclass(frozen=True)
class Figure:
    section: str  # the section's title, or where in bench.json the figure sits
    name: str
    unit: str
    value: float
    raw: float | None  # None: the figure has a target of its own, no raw counterpart
    ratio: float | None
    target: str  # "" when the figure is reported without a target
    met: bool | None  # None: no target, or no ratio to hold to it
    value_label: str
    raw_label: str


def bench_figures(data: Mapping[str, Any]) -> list[Figure]:
    """Every figure in bench.json, those that miss their target first, then those that
    meet theirs, then those without a target; in bench.json's order within each."""
    labels = _LABELS.get(str(data.get("bench", "")), _DEFAULT_LABELS)
    found = list(_walk(data, (), labels))
    return sorted(found, key=lambda f: {False: 0, True: 1, None: 2}[f.met])


def _walk(node: Any, path: tuple[str, ...], labels: tuple[str, str]) -> Iterator[Figure]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, path, labels)
        return
    if not isinstance(node, Mapping):
        return
    figure = _comparison(node, path, labels) or _per_id(node, path)
    if figure is not None:
        yield figure
        return
    if isinstance(node.get("title"), str) and isinstance(node.get("comparisons"), list):
        # A titled section (replication's): its own labels for its figures.
        path = (node["title"],)
        labels = (str(node.get("value_label", labels[0])),
                  str(node.get("raw_label", labels[1])))
    for key, value in node.items():
        yield from _walk(value, path if key in ("comparisons", "comparison")
                         else (*path, str(key)), labels)


def _comparison(node: Mapping[str, Any], path: tuple[str, ...],
                labels: tuple[str, str]) -> Figure | None:
    """A figures.Comparison as saved (to_dict)."""
    if not node.keys() >= _COMPARISON_KEYS or not _is_number(node["value"]):
        return None
    return Figure(" / ".join(path), str(node["name"]), str(node["unit"]),
                  float(node["value"]), _number(node["raw"]), _number(node["ratio"]),
                  str(node.get("target") or ""), _flag(node.get("met")), *labels)


def _per_id(node: Mapping[str, Any], path: tuple[str, ...]) -> Figure | None:
    """A partial resync's figure (`harness bench resync`): ms per id against a bound of
    its own, with no raw counterpart."""
    if not {"ids", "per_id_ms", "target_ms_per_id"} <= node.keys() \
            or not _is_number(node["per_id_ms"]):
        return None
    return Figure(" / ".join(path), f"partial resync of {node['ids']} ids", "ms per id",
                  float(node["per_id_ms"]), None, None, f"<= {node['target_ms_per_id']}",
                  _flag(node.get("met")), "pipeline", "")


# -- replication's curves ------------------------------------------------------------------


@dataclass(frozen=True)
class RungPoint:
    kind: str  # "rung", or "saturation": offered far more than the publisher takes
    offered: float  # writes per second asked for
    achieved: float
    p50: float  # replication lag, ms
    p95: float
    p99: float


@dataclass(frozen=True)
class LagCurve:
    rungs: list[RungPoint]  # by offered rate
    raw_p99: list[tuple[float, float]]  # (rate, the raw broker's end-to-end p99 ms)
    bound_ms: float | None  # the lag bound a sustained rate stays under


def lag_curve(data: Mapping[str, Any]) -> LagCurve | None:
    """The rungs' lag and write rates, the raw broker's p99 at each measured rate, and the
    lag bound; None when bench.json has no rung."""
    rungs = []
    for rung in _dicts(data.get("rungs")):
        lag = _mapping(rung.get("lag"))
        values = [_number(v) for v in (rung.get("offered"), rung.get("achieved"),
                                       *(lag.get(q) for q in ("p50", "p95", "p99")))]
        numbers = [v for v in values if v is not None]
        if len(numbers) == len(values):
            rungs.append(RungPoint(str(rung.get("kind", "rung")), *numbers))
    if not rungs:
        return None
    raw = _mapping(data.get("raw"))
    broker = _mapping(raw.get("broker"))
    raw_p99 = sorted((float(m["rate_per_s"]), float(m["p99"]))
                     for m in _dicts(broker.get("end_to_end_ms"))
                     if _is_number(m.get("rate_per_s")) and _is_number(m.get("p99")))
    return LagCurve(sorted(rungs, key=lambda r: r.offered), raw_p99,
                    _number(data.get("lag_bound_ms")))


@dataclass(frozen=True)
class RecoveryBar:
    fault: str
    median_s: float
    min_s: float
    max_s: float
    repeats: int  # with a figure
    backlog: float  # events written before the heal and not applied by then (median)
    drain_s: float | None  # backlog / the bench's drain rate; None: no drain rate


def recovery_bars(data: Mapping[str, Any]) -> list[RecoveryBar]:
    """Per fault type with a recovery figure, in bench.json's order."""
    drain = _mapping(data.get("drain"))
    per_s = _number(drain.get("per_s"))
    bars = []
    for item in _dicts(data.get("recovery")):
        median, backlog = _number(item.get("median_s")), _number(item.get("backlog"))
        if median is None or backlog is None:
            continue  # no repeat of this fault type has a figure: the table says so
        low, high = _number(item.get("min_s")), _number(item.get("max_s"))
        samples = item.get("recovery_s")
        bars.append(RecoveryBar(
            str(item.get("fault", "")), median, median if low is None else low,
            median if high is None else high,
            len(samples) if isinstance(samples, list) else 0, backlog,
            round(backlog / per_s, 3) if per_s else None))
    return bars


@dataclass(frozen=True)
class DrainBars:
    drain_per_s: float
    raw_per_s: float  # the raw broker's publish+consume rate
    target: str  # e.g. ">= 0.5" of raw; "" when bench.json states none


def drain_bars(data: Mapping[str, Any]) -> DrainBars | None:
    """The drain rate against the raw broker's; None without both figures."""
    drain = _mapping(data.get("drain"))
    raw = _mapping(data.get("raw"))
    broker = _mapping(raw.get("broker"))
    drain_per_s = _number(drain.get("per_s"))
    raw_per_s = _number(broker.get("publish_consume_per_s"))
    if drain_per_s is None or not raw_per_s:
        return None
    target = next((f.target for f in bench_figures(data) if f.name == "drain"), "")
    return DrainBars(drain_per_s, raw_per_s, target)


# -- lag's bars ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PercentileBar:
    name: str  # p50, p95, p99
    pipeline_ms: float
    raw_ms: float


def lag_bars(data: Mapping[str, Any]) -> list[PercentileBar]:
    """`harness bench lag`'s pipeline lag against the raw broker's end to end."""
    pipeline = data.get("pipeline_lag_ms")
    raw = data.get("raw_end_to_end_ms")
    if not isinstance(pipeline, Mapping) or not isinstance(raw, Mapping):
        return []
    return [PercentileBar(q, float(pipeline[q]), float(raw[q]))
            for q in ("p50", "p95", "p99")
            if _is_number(pipeline.get(q)) and _is_number(raw.get(q))]


# -- files ---------------------------------------------------------------------------------


def is_bench_dir(path: Path) -> bool:
    return (path / BENCH_JSON).is_file()


def load_bench(bench_dir: Path) -> dict[str, Any]:
    path = bench_dir / BENCH_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SetupError(f"{path} cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SetupError(f"{path} holds no bench's figures (not a JSON object)")
    return data


def pipeline_href(data: Mapping[str, Any], bench_dir: Path) -> str | None:
    """The pipeline scenarios' index.html relative to the bench folder, when it is there:
    the report folder bench.json names (replication's `pipeline_report`, lag's
    `pipeline_lag_ms.report`), else the folder's pipeline/ (a bench folder moved
    elsewhere keeps its link)."""
    lag = _mapping(data.get("pipeline_lag_ms"))
    named = [Path(p) for p in (data.get("pipeline_report"), lag.get("report"))
             if isinstance(p, str) and p]
    candidates = [*named, bench_dir / "pipeline", *sorted(bench_dir.glob("pipeline/*/"))]
    root = bench_dir.resolve()
    for folder in candidates:
        page = (folder if folder.is_absolute() else bench_dir / folder).resolve() / INDEX
        if page.is_file() and page.is_relative_to(root):
            return quote(page.relative_to(root).as_posix())
    return None


def render_bench_text(data: Mapping[str, Any]) -> str:
    """The figures as `harness report <bench folder>` prints them, not-met first."""
    figures = bench_figures(data)
    lines = [f"bench {data.get('bench', '')}: {len(figures)} figures"]
    for f in figures:
        raw = "" if f.raw is None else f" / {f.raw_label} {_num(f.raw)} {f.unit}"
        ratio = "" if f.ratio is None else f" / ratio {_num(f.ratio)}"
        verdict = {True: "met", False: "NOT met", None: "not shown"}[f.met]
        target = f" (target {f.target}: {verdict})" if f.target else ""
        lines.append(f"{f.name}: {f.value_label} {_num(f.value)} {f.unit}{raw}{ratio}{target}")
    return "\n".join(lines) + "\n"


def write_bench_html(data: Mapping[str, Any], bench_dir: Path) -> Path:
    path = bench_dir / INDEX
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_bench_html(data, bench_dir), encoding="utf-8")
    tmp.replace(path)  # a browser never loads a half-written page
    return path


# -- the page ------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.section { font-size: 0.85em; color: #555; } td.target { white-space: nowrap; }
tr.figure-not-met td { background: #fdecea; } tr.verdict-other td { background: #fdecea; }
.badge { font-weight: bold; padding: 0 0.4em; color: #fff; border-radius: 0.2em;
         white-space: nowrap; }
.badge.met { background: #2ca02c; } .badge.not-met { background: #d62728; }
.badge.none { background: #999; }
figure.chart svg { max-width: 100%; height: auto; }
figure.chart figcaption { color: #555; font-size: 0.9em; }
pre { background: #f4f4f4; font-size: 0.85em; padding: 0.5em; overflow-x: auto; }
"""


def render_bench_html(data: Mapping[str, Any], bench_dir: Path) -> str:
    kind = str(data.get("bench", ""))  # older stored benches may not name themselves
    where = " ".join(str(data[k]) for k in ("broker", "db") if isinstance(data.get(k), str))
    title = " ".join(p for p in ("bench", kind, f"on {where}" if where else "") if p) \
        + f": {bench_dir.name}"
    figures = bench_figures(data)
    missed = sum(1 for f in figures if f.met is False)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>", _parameters(data),
        f'<p id="targets">{len(figures)} figures; {missed} miss their target</p>',
        "<h2>Figures</h2>", _figure_table(figures), _verdicts(data), *_charts(kind, data),
        _pipeline_link(data, bench_dir),
        "<h2>Data</h2><details><summary>bench.json</summary><pre>"
        f"{escape(json.dumps(data, indent=2, default=str))}</pre></details>",
        "</body></html>"]
    return "\n".join(p for p in parts if p) + "\n"


def _parameters(data: Mapping[str, Any]) -> str:
    """The bench's top-level settings and single figures (rate, seed, elapsed, ...)."""
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
                   for k, v in data.items()
                   if k != "bench" and (v is None or isinstance(v, str | int | float)))
    return f'<table class="parameters">{rows}</table>' if rows else ""


def _figure_table(figures: list[Figure]) -> str:
    if not figures:
        return "<p>bench.json states no figure against a raw part (its data is below)</p>"
    # The section column only where a bench groups its figures (replication, resync).
    sectioned = any(f.section for f in figures)
    rows = []
    for f in figures:
        status = {True: "met", False: "not-met", None: "none"}[f.met]
        shown = {True: "met", False: "NOT met", None: "no target" if not f.target else "n/a"}
        rows.append(
            f'<tr class="figure figure-{status}">'
            + (f'<td class="section">{escape(f.section)}</td>' if sectioned else "")
            + f"<td>{escape(f.name)}</td>"
            f'<td class="num">{_num(f.value)} {escape(f.unit)}<br><small>'
            f"{escape(f.value_label)}</small></td>"
            f'<td class="num">{"" if f.raw is None else f"{_num(f.raw)} {escape(f.unit)}"}'
            f"<br><small>{escape(f.raw_label)}</small></td>"
            f'<td class="num">{"" if f.ratio is None else _num(f.ratio)}</td>'
            f'<td class="target">{escape(f.target)}</td>'
            f'<td><span class="badge {status}">{escape(shown[f.met])}</span></td></tr>')
    return ('<table class="figures"><tr>' + ("<th>section</th>" if sectioned else "")
            + "<th>figure</th><th>value</th>"
            "<th>raw</th><th>ratio</th><th>target</th><th>target met</th></tr>"
            + "".join(rows) + "</table>")


def _verdicts(data: Mapping[str, Any]) -> str:
    """The pipeline scenarios' verdicts, those that did not pass first: their figures
    measure something else."""
    verdicts = data.get("verdicts")
    if not isinstance(verdicts, Mapping) or not verdicts:
        return ""
    ordered = sorted(verdicts.items(), key=lambda item: item[1] in _PASSED)
    rows = "".join(f'<tr class="verdict-{"passed" if v in _PASSED else "other"}">'
                   f"<td>{escape(str(name))}</td><td>{escape(str(v))}</td></tr>"
                   for name, v in ordered)
    return ('<h2>Scenarios</h2><table class="verdicts"><tr><th>scenario</th>'
            f"<th>verdict</th></tr>{rows}</table>")


def _charts(kind: str, data: Mapping[str, Any]) -> list[str]:
    # Imported here: matplotlib loads only when a page with charts is drawn.
    from harness.reporting import bench_charts

    charts: list[tuple[str, str]] = []
    if kind == "replication":
        curve = lag_curve(data)
        if curve is not None:
            charts += [(bench_charts.lag_curve_svg(curve, "lag-curve"),
                        "replication lag per offered write rate (p50/p95/p99 of each rung), "
                        "the raw broker's end-to-end p99 at the rates it was measured at, "
                        "and the lag bound a sustained rate stays under"),
                       (bench_charts.write_rate_svg(curve, "write-rate"),
                        "write rate the publisher achieved against the rate offered")]
        bars = recovery_bars(data)
        if bars:
            charts.append((bench_charts.recovery_svg(bars, "recovery"),
                           "recovery per fault type (heal until every earlier event is "
                           "applied): median, error bars from the fastest to the slowest "
                           "repeat; beside it the backlog at the heal over the drain rate"))
        drain = drain_bars(data)
        if drain is not None:
            charts.append((bench_charts.drain_svg(drain, "drain"),
                           "drain of the outbox backlog against the raw broker's "
                           "publish+consume rate"))
    elif kind == "lag":
        percentiles = lag_bars(data)
        if percentiles:
            charts.append((bench_charts.lag_bars_svg(percentiles, "lag-bars"),
                           "replication lag against the raw broker's end to end at the "
                           "same rate"))
    if not charts:
        return []
    return ["<h2>Charts</h2>", *(f'<figure class="chart">{svg}<figcaption>{escape(caption)}'
                                 "</figcaption></figure>" for svg, caption in charts)]


def _pipeline_link(data: Mapping[str, Any], bench_dir: Path) -> str:
    href = pipeline_href(data, bench_dir)
    if href is None:
        return ""
    return (f'<p id="pipeline">The pipeline scenarios\' own report: '
            f'<a href="{escape(href)}">{escape(href)}</a></p>')


# -- values ----------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _num(value: float) -> str:
    """Up to 3 decimals, thousands apart; a small ratio keeps its significant digits."""
    if value != 0 and abs(value) < 0.01:
        return f"{value:.2g}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")
