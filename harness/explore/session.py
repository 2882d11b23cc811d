"""`harness explore` as a function: search for a failing fault schedule against the real
system under test, and store what was found under the report root:

- explore/<run>/: one folder per run of an example (its usual scenario report),
  explore.json (every run and its judgement) and, on a confirmed failure, minimal.toml;
- explore-db/<broker>-<variant>/: the minimal failing examples of earlier searches, each a
  scenario file, run first by the next search with the same broker and variant.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness.brokers.kept import KeptBroker
from harness.brokers.registry import broker_plugin
from harness.explore.live import ScenarioOracle
from harness.explore.schedule import explored_actions
from harness.explore.search import STEADY_RERUNS, Budget, SearchResult, search
from harness.explore.store import ExampleStore, replay_command, write_minimal
from harness.runtime.registry import choose_runtime
from harness.session import claim_run_id, prepare_report_dir
from harness.settings import RunSettings


@dataclass(frozen=True)
class Exploration:
    result: SearchResult
    folder: Path
    minimal_file: Path | None
    replay: str  # the paste-able command that runs the minimal case; "" without one


def explore(settings: RunSettings, budget: Budget, progress: Callable[[str], None],
            log: Callable[[str], None] = lambda _line: None,
            keep_broker: bool = True) -> Exploration:
    """`keep_broker`: run every example on one broker kept for the search, each in a
    namespace of its own, where the broker has namespaces (harness/brokers/kept.py)."""
    root = prepare_report_dir(settings.report_root)
    run_id = claim_run_id(prepare_report_dir(root / "explore"),
                          time.strftime("%Y%m%d-%H%M%S")
                          + f"-{settings.variant}-s{settings.seed}")
    folder = root / "explore" / run_id
    store = ExampleStore(root / "explore-db" / f"{settings.broker}-{settings.variant}")
    stored = store.load()
    actions = explored_actions(broker_plugin(settings.broker).capabilities)
    progress(f"explore: {len(actions)} fault actions, budget {budget.describe()}, seed "
             f"{settings.seed}; {len(stored)} stored failing schedule(s) first; runs in "
             f"{folder}")
    choice = choose_runtime(settings.runtime, progress)
    settings = replace(settings, runtime=choice.name)
    with contextlib.ExitStack() as stack:
        kept = None
        plugin = broker_plugin(settings.broker)
        if keep_broker and KeptBroker.possible(plugin):
            kept = KeptBroker(plugin, choice, folder / "broker", f"{run_id}-broker")
            stack.callback(kept.close)
            progress(f"starting one {settings.broker} broker ({choice.name}), kept for "
                     "every run: each run gets a namespace of its own")
            kept.start()
        else:
            progress(f"every run starts a {settings.broker} broker of its own ({choice.name})"
                     + ("" if not keep_broker else ": it has no namespaces to lend"))
        oracle = ScenarioOracle(settings, folder, choice, kept, log)
        result = search(oracle, actions, budget, settings.seed, progress, stored,
                        replay=oracle.replayed)
    for earlier in stored:
        # One that passes now is dropped; a flaky one stays (its bug is real, just rare).
        if result.judged.get(earlier.key()) == "pass":
            store.discard(earlier)
    minimal_file, replay = None, ""
    if result.minimal is not None and result.first_failure is not None:
        minimal = result.minimal
        path = folder / "minimal.toml"
        replay = replay_command(path, settings.variant, settings.seed, settings.broker,
                                settings.db)
        write_minimal(folder, minimal.example, [
            f"Minimal failing schedule found by harness explore (seed {settings.seed}, "
            f"variant {settings.variant}, broker {settings.broker}, db {settings.db})",
            f"Failing checks: {', '.join(minimal.outcome.failed)}",
            f"  {minimal.outcome.details.splitlines()[0][:300] if minimal.outcome.details else ''}",
            f"First failure after {result.first_failure.elapsed_s:.0f} s (run "
            f"{result.first_failure.index}, {len(result.first_failure.example.faults)} "
            f"fault(s)); shrunk in {result.shrink_steps} steps to "
            f"{len(minimal.example.faults)} fault(s)",
            (f"Steady: it failed {STEADY_RERUNS} more runs in a row, each on a broker of its "
             "own, as a replay runs it" if result.steady else
             f"NOT steady: every candidate passed one of {STEADY_RERUNS} more runs; a replay "
             "may pass (timing-dependent)"),
            f"Its report: {minimal.outcome.report_dir}",
            f"Replay: {replay}"])
        minimal_file = path
        store.save(minimal.example)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "explore.json").write_text(json.dumps(_summary(settings, budget, result,
                                                             minimal_file, replay,
                                                             kept is not None),
                                                    indent=2), encoding="utf-8")
    return Exploration(result, folder, minimal_file, replay)


def _summary(settings: RunSettings, budget: Budget, result: SearchResult,
             minimal_file: Path | None, replay: str, kept_broker: bool
             ) -> dict[str, object]:
    return {
        "seed": settings.seed, "broker": settings.broker, "variant": settings.variant,
        "runtime": settings.runtime, "db": settings.db, "budget": budget.describe(),
        "kept_broker": kept_broker,
        "elapsed_s": round(result.elapsed_s, 1), "schedules": result.examples_tried,
        "runs": [{"index": r.index, "schedule": r.example.describe(),
                  "verdict": r.outcome.verdict, "failed": list(r.outcome.failed),
                  "elapsed_s": round(r.elapsed_s, 1), "report_dir": r.outcome.report_dir}
                 for r in result.runs],
        "flaky": [r.example.describe() for r in result.flaky],
        "first_failure_s": (round(result.first_failure.elapsed_s, 1)
                            if result.first_failure is not None else None),
        "shrink_steps": result.shrink_steps,
        "steady": result.steady, "steadiness": result.steadiness,
        "minimal": str(minimal_file) if minimal_file is not None else None,
        "replay": replay, "summary": result.summary(),
    }
