"""`harness bench runtimes`: what running in containers costs against local processes, in
one run on one machine.

The images are made ready first (a warm check; `--cold` rebuilds every image, the first
build's cost). Then the steady_state scenario runs `--repeats` times on each runtime,
alternating so that a busy moment of the machine does not fall on one runtime only, and
the medians of its set-up time (broker, fault proxy, services started and ready), tear-down
time (everything stopped and removed) and lag p99 are compared: set-up plus tear-down
against the design's budgets (containers <= 30 s, processes <= 10 s), containers' lag
against processes'.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.bench import figures
from harness.errors import ConfigError
from harness.session import run_scenarios, select_scenarios
from harness.settings import RunSettings

SCENARIO = "steady_state"
RUNTIMES = ("processes", "containers")
# The design's budget for one scenario's set-up plus tear-down, per runtime, in seconds.
BUDGET_S: Mapping[str, float] = {"processes": 10.0, "containers": 30.0}

Progress = Callable[[str], None]


def image_build_seconds(cold: bool, progress: Progress) -> dict[str, float]:
    """The images made ready: always the warm figure (nothing to build), and with `cold`
    first a rebuild of every image."""
    from harness.images import prepare_images

    timings: dict[str, float] = {}
    if cold:
        progress("images: rebuilding every image (--cold)")
        timings["cold_s"] = round(prepare_images(progress, force=True).seconds, 1)
    started = time.monotonic()
    prepare_images(lambda _line: None)
    timings["warm_s"] = round(time.monotonic() - started, 2)
    return timings


def run_once(runtime: str, broker: str, seed: int, out_dir: Path,
             progress: Progress) -> dict[str, Any]:
    result, _ = run_scenarios(
        select_scenarios([SCENARIO]),
        RunSettings(seed=seed, broker=broker, runtime=runtime, report_root=out_dir),
        progress=lambda name, message: progress(f"  {runtime} {name}: {message}"))
    scenario = result.scenarios[0]
    metrics = scenario.metrics
    return {"runtime": runtime, "verdict": scenario.verdict, "report_dir": scenario.report_dir,
            "setup_s": float(metrics.get("setup_s", 0.0)),
            "teardown_s": float(metrics.get("teardown_s", 0.0)),
            "lag_p99_ms": float(metrics.get("lag_ms", {}).get("p99", 0.0))}


def summarize(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The bench's figures (titled sections of figures.Comparison) from its runs."""
    def median(runtime: str, key: str) -> float:
        values = [float(r[key]) for r in runs if r["runtime"] == runtime]
        return statistics.median(values) if values else 0.0

    sections: list[dict[str, Any]] = []
    for runtime in RUNTIMES:
        budget = BUDGET_S[runtime]
        setup, teardown = median(runtime, "setup_s"), median(runtime, "teardown_s")
        sections.append({
            "title": f"{runtime}: set-up and tear-down against the budget",
            "value_label": "median", "raw_label": "budget",
            "comparisons": [
                # The design's budget is for both together; each part is shown too.
                figures.compare(f"set-up + tear-down ({runtime})", "s", setup + teardown,
                                budget, "<= 1").to_dict(),
                figures.compare(f"set-up ({runtime})", "s", setup, budget).to_dict(),
                figures.compare(f"tear-down ({runtime})", "s", teardown, budget).to_dict()]})
    sections.append({
        "title": f"{SCENARIO} lag p99: containers against processes",
        "value_label": "containers", "raw_label": "processes",
        "comparisons": [figures.compare("lag p99", "ms", median("containers", "lag_p99_ms"),
                                        median("processes", "lag_p99_ms")).to_dict()]})
    return sections


def report_lines(data: Mapping[str, Any]) -> list[str]:
    lines = [f"{data['broker']}: {SCENARIO} x{data['repeats']} per runtime (seed "
             f"{data['seed']}); images warm {data['images']['warm_s']} s"
             + (f", cold {data['images']['cold_s']} s" if "cold_s" in data["images"] else "")]
    for section in data["sections"]:
        for item in section["comparisons"]:
            lines.append(figures.format_comparison(
                figures.Comparison(**item), section["value_label"], section["raw_label"]))
    failed = [r for r in data["runs"] if r["verdict"] != "pass"]
    if failed:
        lines.append(f"{len(failed)} run(s) did not pass: their figures measure something "
                     "else; see " + ", ".join(r["report_dir"] for r in failed))
    return lines


def runtimes_command(args: argparse.Namespace) -> int:
    """The `harness bench runtimes` entry point (group replication_chaos_harness.benches)."""
    if args.repeats < 1:
        raise ConfigError("--repeats", f"must be >= 1, got {args.repeats}", "e.g. --repeats 3")
    from harness.runtime.containers import docker_client

    docker_client().close()  # a clear SetupError when no engine answers, before anything
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    out_dir = figures.bench_dir(args.report_dir).resolve()
    started = time.monotonic()
    images = image_build_seconds(args.cold, print)
    runs = []
    for repeat in range(args.repeats):
        for runtime in RUNTIMES if repeat % 2 == 0 else reversed(RUNTIMES):
            print(f"run {repeat + 1}/{args.repeats} on {runtime}", flush=True)
            runs.append(run_once(runtime, args.broker, seed + repeat, out_dir, print))
    data = {"bench": "runtimes", "broker": args.broker, "seed": seed,
            "repeats": args.repeats, "images": images, "runs": runs,
            "sections": summarize(runs),
            "elapsed_s": round(time.monotonic() - started, 1)}
    path = figures.save(out_dir, data)
    print()
    print("\n".join(report_lines(data)))
    print(f"data: {path}")
    return 0 if all(r["verdict"] == "pass" for r in runs) else 1
