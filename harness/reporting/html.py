"""index.html: a run's report for people, one self-contained page.

Rendered from run.json and each scenario's stored files alone (harness/reporting/timeline.py
says which), so `harness report RUN --html` draws a stored run again. The page holds its
style and its charts (inline SVG): it opens from disk with no server and no network.

Failures come first: scenarios that failed, errored or were inconclusive before those that
passed, and within a scenario the checks that did not pass before those that did. Every
text taken from the data is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.contract.outcomes import OUTCOMES
from harness.reporting.charts import timeline_svg
from harness.reporting.summary import scenario_line
from harness.reporting.timeline import (
    DELIVERIES,
    HISTORY,
    FaultWindow,
    TimelineUnavailable,
    read_timeline,
)

INDEX = "index.html"

# Findings first (fail), then what could not be judged (error, inconclusive).
_VERDICT_ORDER = ("fail", "error", "inconclusive", "pass", "not_applicable")
_STATUS_ORDER = ("fail", "unknown", "inconclusive", "pass")
# A counterexample can hold thousands of ids; the page shows its start, run.json has it all.
_COUNTEREXAMPLE_CHARS = 4000

_STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.2em; margin-top: 0; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
section.scenario { border: 1px solid #bbb; border-left-width: 0.5em; padding: 0.8em 1em;
                   margin: 1.2em 0; }
.verdict-pass { border-left-color: #2ca02c; } .verdict-fail { border-left-color: #d62728; }
.verdict-error { border-left-color: #8c1c13; }
.verdict-inconclusive { border-left-color: #ff7f0e; }
.verdict-not_applicable { border-left-color: #999; }
.badge { font-weight: bold; padding: 0 0.4em; color: #fff; border-radius: 0.2em; }
.badge.pass { background: #2ca02c; } .badge.fail { background: #d62728; }
.badge.error, .badge.unknown { background: #8c1c13; }
.badge.inconclusive { background: #ff7f0e; } .badge.not_applicable { background: #999; }
tr.check-fail td, tr.check-unknown td { background: #fdecea; }
tr.check-inconclusive td { background: #fff4e5; }
pre, code { background: #f4f4f4; font-size: 0.9em; }
pre { padding: 0.5em; overflow-x: auto; white-space: pre-wrap; }
figure.timeline svg { max-width: 100%; height: auto; }
.no-timeline { color: #666; font-style: italic; }
"""


def render_html(run: dict[str, Any], run_dir: Path) -> str:
    """The page of a run whose scenario folders are under `run_dir`."""
    scenarios = sorted(run["scenarios"], key=lambda s: _rank(_VERDICT_ORDER, s["verdict"]))
    title = f"run {run['run_id']}: {run.get('verdict', '')}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Run {escape(run['run_id'])} "
        f"{_badge(str(run.get('verdict', '')))}</h1>",
        _run_table(run),
        "<h3>Replay</h3>",
        f'<pre id="replay"><code>{escape(run["replay"])}</code></pre>',
        "<h3>Scenarios</h3>", _overview(scenarios),
    ]
    parts += [_scenario(s, run_dir / s["name"]) for s in scenarios]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(run: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / INDEX
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(run, run_dir), encoding="utf-8")
    tmp.replace(path)  # a browser never loads a half-written page
    return path


def _run_table(run: dict[str, Any]) -> str:
    keys = ("seed", "broker", "runtime", "variant", "exit_code")
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(run.get(k, '')))}</td></tr>"
                   for k in keys)
    interrupted = "<p><strong>interrupted</strong>: only the scenarios below finished</p>" \
        if run.get("interrupted") else ""
    return f'<table class="run">{rows}</table>{interrupted}'


def _overview(scenarios: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr><td><a href="#{_anchor(s["name"])}">{escape(s["name"])}</a></td>'
        f"<td>{_badge(s['verdict'])}</td><td>{s['duration_s']:.1f} s</td>"
        f"<td>{escape(_headline(s))}</td></tr>" for s in scenarios)
    return '<table class="overview"><tr><th>scenario</th><th>verdict</th><th>took</th>' \
        f"<th>summary</th></tr>{rows}</table>"


def _headline(scenario: dict[str, Any]) -> str:
    """One short line: a pass's figures, an error's first line, or which checks did not
    pass (their messages are in the scenario's section, failures first)."""
    verdict = scenario["verdict"]
    if verdict in ("pass", "not_applicable") or scenario["error"]:
        # The summary's line without the verdict, name and duration shown beside it.
        line = scenario_line(scenario)
        return line.split(f"{scenario['duration_s']:6.1f}s", 1)[-1].strip()
    failing = [f"{c['name']} ({_status(c)})" for c in scenario["checks"]
               if _status(c) != "pass"]
    return "did not pass: " + ", ".join(failing) if failing else "no check ran"


def _scenario(scenario: dict[str, Any], folder: Path) -> str:
    verdict = scenario["verdict"]
    parts = [f'<section class="scenario verdict-{escape(verdict)}" '
             f'id="{_anchor(scenario["name"])}">',
             f"<h2>{escape(scenario['name'])} {_badge(verdict)} "
             f"<small>{scenario['duration_s']:.1f} s</small></h2>"]
    if scenario.get("not_applicable"):
        parts.append(f"<p>not applicable: {escape(scenario['not_applicable'])}</p>")
    if scenario["error"]:
        kind = scenario.get("error_kind") or "error"
        parts.append(f'<h3>Error ({escape(kind)})</h3><pre class="error">'
                     f"{escape(scenario['error'])}</pre>")
    parts += [_checks(scenario["checks"]), _metrics(scenario.get("metrics", {}))]
    if verdict != "not_applicable":
        faults = scenario.get("faults", [])
        parts += ["<h3>Timeline</h3>", _timeline(scenario["name"], folder, faults)]
    parts += [_logs(folder), "</section>"]
    return "\n".join(p for p in parts if p)


def _checks(checks: list[dict[str, Any]]) -> str:
    if not checks:
        return "<p>no check ran</p>"
    rows = []
    for check in sorted(checks, key=lambda c: _rank(_STATUS_ORDER, _status(c))):
        status = _status(check)
        example = check.get("counterexample")
        detail = escape(check["details"])
        if example:
            text = json.dumps(example, default=str)
            shown = text[:_COUNTEREXAMPLE_CHARS] + (" ..." if len(text) > len(
                text[:_COUNTEREXAMPLE_CHARS]) else "")
            detail += f"<details><summary>counterexample</summary><pre>{escape(shown)}" \
                "</pre></details>"
        rows.append(f'<tr class="check check-{escape(status)}"><td>{escape(check["name"])}'
                    f"</td><td>{_badge(status)}</td><td>{detail}</td></tr>")
    return '<h3>Checks</h3><table class="checks"><tr><th>check</th><th>status</th>' \
        f"<th>details</th></tr>{''.join(rows)}</table>"


def _metrics(metrics: dict[str, Any]) -> str:
    if not metrics:
        return ""
    lag = metrics.get("lag_ms", {})
    writes = metrics.get("write_latency_ms", {})
    offered = metrics.get("offered_rate_per_s")
    shown = [("writes/s achieved of offered",
              f"{metrics.get('achieved_rate_per_s')} of {offered}" if offered else None),
             ("write latency from due time p50 / p99 / max (ms)",
              " / ".join(str(writes.get(k, "")) for k in ("p50", "p99", "max"))
              if isinstance(writes, dict) and writes else None),
             ("events processed", metrics.get("events_processed")),
             ("throughput (events/s)", metrics.get("throughput_eps")),
             ("lag p50 / p95 / p99 / max (ms)",
              " / ".join(str(lag.get(k, "")) for k in ("p50", "p95", "p99", "max"))
              if lag else None),
             ("redelivered", metrics.get("redelivered")),
             ("converged after load (s)", metrics.get("converged_after_load_s")),
             ("recovery (s)", metrics.get("recovery_s")),
             ("set-up (s)", metrics.get("setup_s"))]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>"
                   for k, v in shown if v is not None)
    outcomes = metrics.get("outcomes")
    if isinstance(outcomes, dict) and outcomes:
        # Every known outcome, zero included: "0 dead-lettered" is a finding too.
        names = [*OUTCOMES, *sorted(set(outcomes) - set(OUTCOMES))]
        cells = "".join(f"<tr><td>{escape(str(n))}</td><td>{escape(str(outcomes.get(n, 0)))}"
                        "</td></tr>" for n in names)
        delivery = '<h3>Delivery outcomes</h3><table class="outcomes"><tr><th>outcome</th>' \
            f"<th>deliveries</th></tr>{cells}</table>"
    else:
        delivery = ""
    return f'<h3>Metrics</h3><table class="metrics">{rows}</table>{delivery}'


def _timeline(name: str, folder: Path, faults: list[dict[str, Any]]) -> str:
    return _timeline_section(name, str(folder), _stamp(folder),
                             json.dumps(faults, sort_keys=True, default=str))


@lru_cache(maxsize=64)
def _timeline_section(name: str, folder: str, stamp: tuple[tuple[str, int, int], ...],
                      faults: str) -> str:
    # A run rewrites its page after every scenario; a finished scenario's files (`stamp`)
    # and assessed faults do not change, so its chart is drawn once per run, not once per
    # scenario that follows it.
    del stamp  # only part of the cache key
    try:
        timeline = read_timeline(Path(folder), json.loads(faults))
    except TimelineUnavailable as exc:
        return f'<p class="no-timeline">no timeline recorded ({escape(str(exc))})</p>'
    return f'<figure class="timeline">{timeline_svg(timeline, salt=name)}</figure>' \
        f"{_fault_table(timeline.faults)}"


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    stamps = []
    for name in (HISTORY, DELIVERIES):
        try:
            stat = (folder / name).stat()
        except OSError:
            continue
        stamps.append((name, stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def _fault_table(windows: list[FaultWindow]) -> str:
    if not windows:
        return "<p>no fault was injected</p>"
    rows = "".join(
        f'<tr class="fault"><td>{escape(w.label)}</td><td>{escape(w.target)}</td>'
        f"<td>{w.start_s:.2f}</td><td>{w.end_s:.2f}</td>"
        f"<td>{'' if w.recovered_s is None else f'{w.recovered_s:.2f}'}</td>"
        f"<td>{escape(w.impact)}</td></tr>" for w in windows)
    return '<table class="faults"><tr><th>fault</th><th>target</th><th>injected (s)</th>' \
        "<th>healed (s)</th><th>recovered (s)</th><th>impact</th></tr>" + rows + "</table>"


def _logs(folder: Path) -> str:
    files = sorted(_log_files(folder))
    if not files:
        return ""
    links = "".join(f'<li><a href="{escape(quote(f"{folder.name}/{f}"))}">{escape(f)}</a></li>'
                    for f in files)
    return f'<h3>Logs</h3><ul class="logs">{links}</ul>'


def _log_files(folder: Path) -> Iterable[str]:
    """Each component's log, the error's traceback and the history, relative to `folder`."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.rglob("*.log") if p.is_file()]
    found += [folder / n for n in ("error.txt", HISTORY) if (folder / n).is_file()]
    return [p.relative_to(folder).as_posix() for p in found]


def _badge(status: str) -> str:
    return f'<span class="badge {escape(status)}">{escape(status.upper())}</span>'


def _status(check: dict[str, Any]) -> str:
    # run.json files written before checks carried a status only have "ok".
    return str(check.get("status") or ("pass" if check["ok"] else "fail"))


def _rank(order: tuple[str, ...], value: str) -> int:
    return order.index(value) if value in order else len(order)


def _anchor(name: str) -> str:
    return "scenario-" + quote(name, safe="")
