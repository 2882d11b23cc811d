"""Bench figures: percentiles of samples, and a figure set against its raw counterpart
from the same run (value / raw / ratio, and the design target it is held to).

Pure functions and plain data: the benches measure, this file only computes and prints.
"""

from __future__ import annotations

import json
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.metrics import percentile

# A target is "<= 3" or ">= 0.9": the ratio must stay at or below / reach that bound.
_BOUNDS: Mapping[str, Callable[[float, float], bool]] = {"<=": operator.le,
                                                          ">=": operator.ge}


@dataclass(frozen=True)
class Percentiles:
    """Milliseconds, over `count` samples."""

    count: int
    p50: float
    p95: float
    p99: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentiles(samples_ms: Sequence[float]) -> Percentiles:
    """p50/p95/p99 of the samples, by the same rule as the scenarios' lag figures
    (harness.metrics.percentile), so a raw figure and a pipeline figure compare alike."""
    ordered = sorted(samples_ms)
    return Percentiles(len(ordered), *(round(percentile(ordered, q), 3)
                                       for q in (0.50, 0.95, 0.99)))


def target_met(ratio: float | None, target: str) -> bool | None:
    """Whether `ratio` meets `target` ("<= 3", ">= 0.9"); None without a ratio."""
    bound, _, limit = target.partition(" ")
    if bound not in _BOUNDS:
        raise ValueError(f"a target is '<= N' or '>= N', not {target!r}")
    return None if ratio is None else _BOUNDS[bound](ratio, float(limit))


@dataclass(frozen=True)
class Comparison:
    """One figure against the raw part's in the same run. `ratio` is value / raw (None
    when raw is 0: no ratio can be stated)."""

    name: str
    unit: str
    value: float
    raw: float
    ratio: float | None
    target: str = ""  # "" when the figure is reported without a target
    met: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(name: str, unit: str, value: float, raw: float, target: str = "") -> Comparison:
    ratio = round(value / raw, 3) if raw > 0 else None
    return Comparison(name, unit, round(value, 3), round(raw, 3), ratio, target,
                      target_met(ratio, target) if target else None)


def _ratio_text(ratio: float) -> str:
    """Two decimals; a ratio under 0.1 keeps its first significant digits (0.004, not
    0.00, when the pipeline runs at a fraction of a raw part)."""
    return f"{ratio:.2f}" if ratio >= 0.1 or ratio == 0 else f"{ratio:.2g}"


def format_comparison(item: Comparison, value_label: str, raw_label: str) -> str:
    """E.g. "lag p99: pipeline 120.0 ms / raw broker 60.0 ms / ratio 2.00 (target <= 3:
    met)"."""
    ratio = "n/a (raw is 0)" if item.ratio is None else _ratio_text(item.ratio)
    line = (f"{item.name}: {value_label} {item.value:.1f} {item.unit} / {raw_label} "
            f"{item.raw:.1f} {item.unit} / ratio {ratio}")
    if item.target:
        verdict = {True: "met", False: "NOT met", None: "not shown"}[item.met]
        line += f" (target {item.target}: {verdict})"
    return line


def bench_dir(report_root: Path) -> Path:
    """A new reports/bench-<time>/ folder, as every bench writes."""
    out_dir = Path(report_root) / time.strftime("bench-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def save(out_dir: Path, data: Mapping[str, Any]) -> Path:
    """bench.json, and the page drawn from it alone (index.html beside it), so the page
    shows what is stored and `harness report <out_dir> --html` draws it again."""
    from harness.reporting.bench_html import write_bench_html  # matplotlib: only here

    path = out_dir / "bench.json"
    text = json.dumps(data, indent=2)
    path.write_text(text)
    write_bench_html(json.loads(text), out_dir)
    return path
