"""The search: Hypothesis draws examples (harness/explore/schedule.py), an oracle runs
each against a system under test and judges it, and a confirmed failure is shrunk.

The oracle is any callable Example -> Outcome: the real one runs the example as a
scenario (harness/explore/live.py); unit tests give a fake. Hypothesis sees only
"failed" or "passed"; everything else (flaky outcomes, errors, the budget, progress) is
kept here:

- a failing example is run once more; if it passes then, it is *flaky*: recorded, and
  passed to Hypothesis as a pass, so it is never shrunk into a false minimal case;
- outcomes are remembered by example, so Hypothesis's own replay of the minimal case
  before it reports it costs no run;
- a schedule of faults that passed once is not run again under another load shape (rate,
  duration): it counts as passed. Hypothesis goes back to the simplest schedules between
  random ones (a quarter of the runs of a search were one fault at 1 s under loads that
  differed only in their rate); the budget goes to new schedules instead;
- once the budget (seconds or examples) is spent, no new example runs: each counts as a
  pass, so a shrink in progress stops at the smallest confirmed failure so far (the last
  confirmed failure is always the smallest: the shrinker only tries candidates smaller
  than its current one);
- then the smallest confirmed failure must prove *steady*: it is run STEADY_RERUNS more
  times, as a replay runs it (the `replay` oracle: on a broker of its own, where the
  search lends namespaces of one kept broker), and must fail every time. Two failures in
  a row do not make a timing-dependent case (a graceful stop that loses an event only
  when it meets a batch in flight) fail when replayed, and a broker killed under a long
  search's load loses messages more readily than a fresh one; a case that passes a rerun
  is set aside for the confirmed failure before it (larger, found earlier in the
  shrink), up to STEADY_CANDIDATES of them. If none is steady, the smallest is reported,
  marked as not steady.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from unittest import mock

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import example as hypothesis_example
from hypothesis.internal.conjecture import engine as hypothesis_engine

from harness.explore.schedule import Example, examples

# Checks about the run itself (harness/checkers/run_checks.py): a drawn fault too short
# or too weak to be felt, or a publisher outage that fails writes, says nothing about the
# system's correctness. A search judges by the other checks, its findings.
RUN_CHECKS = frozenset({"progress", "fault_was_active"})


# Reruns a minimal case must fail, all of them, to count as steady; and how many confirmed
# failures, smallest first, are tried. At most 9 runs after the search.
STEADY_RERUNS = 3
STEADY_CANDIDATES = 3


@dataclass(frozen=True)
class Outcome:
    """What one run of an example showed. `failed`: the finding checks that failed (empty:
    no finding); `verdict`: the scenario's verdict; `details`: the first failing check's
    message, or the error; `report_dir`: where its report is."""

    failed: tuple[str, ...]
    verdict: str
    details: str = ""
    report_dir: str = ""
    # The checks about the run itself that failed (RUN_CHECKS): no finding, but why the
    # scenario's own verdict is "fail".
    run_checks_failed: tuple[str, ...] = ()

    def describe(self) -> str:
        """E.g. "FAIL (no_lost_updates)", "pass", or "no finding (scenario fail:
        fault_was_active)"."""
        if self.failed:
            return f"FAIL ({', '.join(self.failed)})"
        if self.verdict == "pass":
            return "pass"
        why = ", ".join(self.run_checks_failed)
        if not why and self.details:
            why = self.details.splitlines()[0][:120]
        return f"no finding (scenario {self.verdict}" + (f": {why})" if why else ")")

    @property
    def is_failure(self) -> bool:
        return bool(self.failed)


Oracle = Callable[[Example], Outcome]


@dataclass(frozen=True)
class Budget:
    """Stop running new examples after `seconds` of wall-clock time or `examples` runs
    (reruns of a failing example included), whichever is given."""

    seconds: float | None = None
    examples: int | None = None

    @staticmethod
    def parse(text: str) -> Budget:
        """"15m" (minutes), "90s" (seconds) or "40" (examples)."""
        text = text.strip().lower()
        try:
            if text.endswith("m"):
                return Budget(seconds=60 * float(text[:-1]))
            if text.endswith("s"):
                return Budget(seconds=float(text[:-1]))
            return Budget(examples=int(text))
        except ValueError:
            raise ValueError(f"not a budget: {text!r}; write 15m, 90s or 40 "
                             "(examples)") from None

    def describe(self) -> str:
        return f"{self.seconds:g} s" if self.seconds is not None \
            else f"{self.examples} examples"


@dataclass(frozen=True)
class Run:
    """One run of an example: `index` counts runs from 1 (reruns included)."""

    index: int
    example: Example
    outcome: Outcome
    elapsed_s: float


@dataclass
class SearchResult:
    runs: list[Run] = field(default_factory=list)
    # Each distinct example tried (its first run), and its judgement: pass, fail, flaky.
    judged: dict[str, str] = field(default_factory=dict)  # by Example.key()
    first_failure: Run | None = None
    minimal: Run | None = None
    shrink_steps: int = 0  # confirmed failures smaller than the first
    flaky: list[Run] = field(default_factory=list)
    budget_spent: bool = False
    elapsed_s: float = 0.0
    # Examples counted as passed without a run: their faults passed under another load.
    repeats_skipped: int = 0
    confirmed: list[Run] = field(default_factory=list)  # every confirmed failure, in order
    # The steadiness check of the minimal case: each candidate tried, how many of its
    # reruns failed; `steady`: whether the reported minimal case failed them all (None:
    # nothing to check).
    steadiness: list[dict[str, object]] = field(default_factory=list)
    steady: bool | None = None

    @property
    def examples_tried(self) -> int:
        return len(self.judged)

    def summary(self) -> str:
        runs = len(self.runs)
        rate = 60 * runs / self.elapsed_s if self.elapsed_s else 0.0
        text = (f"{self.examples_tried} schedules tried in {runs} runs over "
                f"{self.elapsed_s:.0f} s ({rate:.1f} runs/min); "
                f"{sum(1 for v in self.judged.values() if v == 'fail')} confirmed failing, "
                f"{len(self.flaky)} flaky, {self.repeats_skipped} repeated schedules "
                "not run again")
        if self.first_failure is not None and self.minimal is not None:
            text += (f"; first failure after {self.first_failure.elapsed_s:.0f} s (run "
                     f"{self.first_failure.index}), shrunk in {self.shrink_steps} steps to "
                     f"{len(self.minimal.example.faults)} fault(s)")
            text += ("; it failed all its reruns" if self.steady
                     else "; it is not steady (it passed a rerun): timing-dependent")
        return text


def _faults_key(example: Example) -> str:
    return repr(example.faults)


class _Found(AssertionError):
    """Raised to Hypothesis for a confirmed failure (its message names the checks)."""


class _Search:
    def __init__(self, oracle: Oracle, budget: Budget, progress: Callable[[str], None],
                 replay: Oracle | None = None) -> None:
        self.oracle = oracle
        self.replay = replay or oracle
        self.budget = budget
        self.progress = progress
        self.result = SearchResult()
        self.started = time.monotonic()
        self.outcomes: dict[str, Outcome] = {}  # by Example.key()
        self.passed_faults: dict[str, Outcome] = {}  # by _faults_key(), passing only

    def spent(self) -> bool:
        if self.budget.seconds is not None:
            return time.monotonic() - self.started >= self.budget.seconds
        return self.budget.examples is not None \
            and len(self.result.runs) >= self.budget.examples

    def run(self, example: Example, oracle: Oracle | None = None) -> Outcome:
        outcome = (oracle or self.oracle)(example)
        elapsed = time.monotonic() - self.started
        run = Run(len(self.result.runs) + 1, example, outcome, elapsed)
        self.result.runs.append(run)
        self.progress(f"run {run.index}: {example.describe()} -> {outcome.describe()}")
        return outcome

    def judge(self, example: Example) -> Outcome | None:
        """The example's outcome as Hypothesis should see it; None once the budget is
        spent (it then counts as a pass, without a run)."""
        key = example.key()
        if key in self.outcomes:
            return self.outcomes[key]
        if _faults_key(example) in self.passed_faults:
            self.result.repeats_skipped += 1
            self.outcomes[key] = self.passed_faults[_faults_key(example)]
            return self.outcomes[key]
        if self.spent():
            self.result.budget_spent = True
            return None
        outcome = self.run(example)
        verdict = "pass"
        if outcome.is_failure:
            again = self.run(example)
            if again.is_failure:
                verdict = "fail"
                self._confirmed(self.result.runs[-1])
            else:
                verdict = "flaky"
                self.result.flaky.append(self.result.runs[-2])
                self.progress(f"flaky: failed ({', '.join(outcome.failed)}), then passed "
                              "on rerun; not shrunk")
                outcome = again
        self.result.judged[key] = verdict
        self.outcomes[key] = outcome
        if verdict != "fail":
            self.passed_faults.setdefault(_faults_key(example), outcome)
        self._report()
        return outcome

    def check_steady(self) -> None:
        """Rerun the smallest confirmed failures until one fails every rerun (see the
        module's docstring); that one becomes the minimal case."""
        candidates = self.result.confirmed[::-1][:STEADY_CANDIDATES]
        if not candidates:
            return
        self.progress(f"checking that the minimal case fails {STEADY_RERUNS} reruns in a row, "
                      "each run as a replay runs it")
        for candidate in candidates:
            failed = 0
            while failed < STEADY_RERUNS \
                    and self.run(candidate.example, self.replay).is_failure:
                failed += 1
            self.result.steadiness.append({"schedule": candidate.example.describe(),
                                           "run": candidate.index, "reruns_failed": failed,
                                           "steady": failed == STEADY_RERUNS})
            if failed == STEADY_RERUNS:
                self.result.minimal, self.result.steady = candidate, True
                return
            self.progress(f"not steady: {candidate.example.describe()} passed rerun "
                          f"{failed + 1}; trying the confirmed failure before it")
        self.result.minimal, self.result.steady = candidates[0], False

    def _confirmed(self, run: Run) -> None:
        if self.result.first_failure is None:
            self.result.first_failure = run
            self.progress(f"failure confirmed after {run.elapsed_s:.0f} s; shrinking")
        else:
            self.result.shrink_steps += 1
        self.result.minimal = run
        self.result.confirmed.append(run)

    def _report(self) -> None:
        r = self.result
        self.progress(f"{r.examples_tried} schedules, {len(r.runs)} runs, "
                      f"{sum(1 for v in r.judged.values() if v == 'fail')} failing, "
                      f"{len(r.flaky)} flaky, {r.shrink_steps} shrink steps, "
                      f"{r.repeats_skipped} repeats not run, "
                      f"{time.monotonic() - self.started:.0f} s elapsed")


@contextlib.contextmanager
def _shrinking_until_the_budget() -> Iterator[None]:
    """Hypothesis stops shrinking after 300 s of its own (a module constant of its engine,
    not a setting): about a dozen real runs. Lifted while a search runs, so that the
    budget decides when a shrink ends."""
    if not hasattr(hypothesis_engine, "MAX_SHRINKING_SECONDS"):
        yield  # a Hypothesis without the limit
        return
    with mock.patch.object(hypothesis_engine, "MAX_SHRINKING_SECONDS", 10**9):
        yield


def search(oracle: Oracle, actions: tuple[str, ...], budget: Budget, seed_value: int,
           progress: Callable[[str], None], stored: Sequence[Example] = (),
           replay: Oracle | None = None) -> SearchResult:
    """Run the `stored` examples (failures of earlier searches, see store.py) first: one
    that still fails is the result, unshrunk (it was minimal when stored). Then draw
    examples with faults from `actions` until one fails (confirmed) and shrink it, or until
    the budget is spent. The same `seed_value` and budget draw the same examples.
    `replay` runs the steadiness reruns (default: `oracle`)."""
    state = _Search(oracle, budget, progress, replay)
    # A time budget still needs a cap on examples: after the budget every example counts
    # as a pass without a run, and Hypothesis goes on drawing until the cap. No real run
    # takes under a second.
    # An example budget needs room too: a repeated schedule counts toward the cap without
    # a run.
    cap = 3 * budget.examples if budget.examples is not None \
        else max(10, int(budget.seconds or 0))

    # Hypothesis's own example database is off under an explicit seed (hypothesis.seed),
    # so earlier failures come back as explicit examples instead.
    @seed(seed_value)
    @settings(max_examples=cap, deadline=None, database=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink),
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
              report_multiple_bugs=False, print_blob=False)
    @given(examples(actions))
    def probe(example: Example) -> None:
        outcome = state.judge(example)
        if outcome is not None and outcome.is_failure:
            raise _Found(f"{', '.join(outcome.failed)}: {outcome.details}")

    for earlier in stored:
        probe = hypothesis_example(earlier)(probe)
    # The minimal case is state.result.minimal; the one Hypothesis raises is the same.
    with contextlib.suppress(_Found), _shrinking_until_the_budget():
        probe()
    state.check_steady()
    state.result.elapsed_s = time.monotonic() - state.started
    return state.result
