"""harness explore's search, driven against fake systems under test (no processes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine

from harness.brokers import capabilities as caps
from harness.explore.schedule import (
    EXPLORED_ACTIONS,
    TARGETS,
    Example,
    examples,
    explored_actions,
)
from harness.explore.search import STEADY_RERUNS, Budget, Outcome, Run, _Search, search
from harness.explore.store import ExampleStore
from harness.scenario import FaultStep

ACTIONS = explored_actions(caps.ALL)
# Few enough actions that a search of a few hundred examples meets the fake bug below
# (with seed 5: within about 200 runs).
SOME = ("pause", "stop", "kill")


def passing_recorder() -> tuple[list[Example], Callable[[Example], Outcome]]:
    """A fake system under test with no bug, and the examples it was given, in order."""
    runs: list[Example] = []

    def record(example: Example) -> Outcome:
        runs.append(example)
        return Outcome((), "pass")

    return runs, record


def _overlaps(pause: FaultStep, kill: FaultStep) -> bool:
    return pause.at_s <= kill.at_s <= pause.at_s + pause.duration_s


def kill_during_broker_pause(example: Example) -> Outcome:
    """A fake system with a bug that needs two overlapping faults: a consumer SIGKILLed
    while the broker is frozen loses what it had acked."""
    pauses = [s for s in example.faults if (s.action, s.target) == ("pause", "broker")
              and s.duration_s > 0]
    kills = [s for s in example.faults if (s.action, s.target) == ("kill", "consumer")]
    if any(_overlaps(p, k) for p in pauses for k in kills):
        return Outcome(("no_lost_updates",), "fail", "events lost")
    return Outcome((), "pass")


def test_shrinks_to_the_two_overlapping_faults() -> None:
    result = search(kill_during_broker_pause, SOME, Budget(examples=3000), 5,
                    lambda _line: None)
    assert result.minimal is not None and result.first_failure is not None
    faults = result.minimal.example.faults
    assert sorted((s.action, s.target) for s in faults) == [("kill", "consumer"),
                                                            ("pause", "broker")]
    assert result.minimal.outcome.failed == ("no_lost_updates",)
    assert result.shrink_steps >= 1
    assert result.flaky == []


KILL = Example(150, 6, (FaultStep("kill", "consumer", 2.0),))
PAUSE_AND_KILL = Example(150, 6, (FaultStep("pause", "broker", 1.5, duration_s=2.0),
                                  FaultStep("kill", "consumer", 2.0)))


def test_a_minimal_case_that_passes_a_rerun_gives_way_to_a_steady_one() -> None:
    def only_the_overlap_always_loses(example: Example) -> Outcome:
        # A kill alone lost events twice (confirmed) but passes now: timing-dependent.
        return kill_during_broker_pause(example)

    state = _Search(only_the_overlap_always_loses, Budget(examples=10), lambda _line: None)
    lost = Outcome(("no_lost_updates",), "fail", "events lost")
    state.result.confirmed = [Run(2, PAUSE_AND_KILL, lost, 20.0), Run(4, KILL, lost, 40.0)]
    state.result.minimal = state.result.confirmed[-1]
    state.check_steady()
    assert state.result.minimal.example == PAUSE_AND_KILL and state.result.steady is True
    assert state.result.steadiness == [
        {"schedule": KILL.describe(), "run": 4, "reruns_failed": 0, "steady": False},
        {"schedule": PAUSE_AND_KILL.describe(), "run": 2, "reruns_failed": STEADY_RERUNS,
         "steady": True}]
    # One rerun of the kill (it passed), three of the overlap.
    assert [run.example for run in state.result.runs] == \
        [KILL] + [PAUSE_AND_KILL] * STEADY_RERUNS


def test_no_steady_candidate_leaves_the_smallest_marked_unsteady() -> None:
    state = _Search(lambda _example: Outcome((), "pass"), Budget(examples=10),
                    lambda _line: None)
    lost = Outcome(("no_lost_updates",), "fail", "events lost")
    state.result.confirmed = [Run(2, PAUSE_AND_KILL, lost, 20.0), Run(4, KILL, lost, 40.0)]
    state.result.first_failure = state.result.confirmed[0]
    state.check_steady()
    assert state.result.minimal is not None and state.result.minimal.example == KILL
    assert state.result.steady is False
    assert "not steady" in state.result.summary()


def test_steadiness_reruns_run_as_replays() -> None:
    # The search's oracle (a kept broker) loses events on every kill; a replay (a broker
    # of its own) never does: the case is not steady, and only replays judged it.
    always_loses = Outcome(("no_lost_updates",), "fail", "events lost")
    replays, replay = passing_recorder()
    state = _Search(lambda _example: always_loses, Budget(examples=10), lambda _line: None,
                    replay=replay)
    state.result.confirmed = [Run(2, KILL, always_loses, 20.0)]
    state.result.first_failure = state.result.confirmed[0]
    state.check_steady()
    assert replays == [KILL] and state.result.steady is False


def test_a_flaky_failure_is_reported_and_never_shrunk() -> None:
    seen: set[str] = set()

    def fails_once(example: Example) -> Outcome:
        # Any schedule with a consumer kill fails the first time only.
        if any(s.action == "kill" for s in example.faults) and example.key() not in seen:
            seen.add(example.key())
            return Outcome(("effect_once",), "fail", "applied twice")
        return Outcome((), "pass")

    result = search(fails_once, ACTIONS, Budget(examples=200), 3,
                    lambda _line: None)
    assert result.flaky, "the fake fails once for every schedule with a kill"
    assert result.first_failure is None and result.minimal is None
    assert result.shrink_steps == 0
    assert all(v in ("pass", "flaky") for v in result.judged.values())
    # Each flaky schedule ran exactly twice: the failure and its rerun.
    assert len(result.runs) == result.examples_tried + len(result.flaky)


def test_same_seed_draws_the_same_examples() -> None:
    def tried(seed_value: int) -> list[str]:
        runs, record = passing_recorder()
        search(record, ACTIONS, Budget(examples=15), seed_value, lambda _line: None)
        return [example.key() for example in runs]

    assert tried(5) == tried(5)
    assert tried(5) != tried(6)


def test_a_stored_failure_is_tried_first_next_time(tmp_path: Path) -> None:
    store = ExampleStore(tmp_path / "db")
    first = search(kill_during_broker_pause, SOME, Budget(examples=3000), 5,
                   lambda _line: None, store.load())
    assert first.minimal is not None
    store.save(first.minimal.example)
    again = search(kill_during_broker_pause, SOME, Budget(examples=3000), 2,
                   lambda _line: None, store.load())
    # The stored case, run first (and rerun to confirm), is the result: nothing to shrink;
    # then it proves steady.
    assert [run.example.key() for run in again.runs] == \
        [first.minimal.example.key()] * (2 + STEADY_RERUNS)
    assert again.minimal is not None and again.shrink_steps == 0


def test_a_schedule_that_passed_is_not_run_again_under_another_load() -> None:
    runs, count = passing_recorder()
    result = search(count, ACTIONS, Budget(examples=60), 1, lambda _line: None)
    schedules = [repr(example.faults) for example in runs]
    assert len(schedules) == len(set(schedules)) == 60  # the budget: 60 runs
    assert result.repeats_skipped > 0, "Hypothesis drew no repeated schedule: test moot"


def test_a_failing_schedule_is_still_shrunk_in_its_load() -> None:
    # Fails at 150 writes/s or more only: the same faults at a lower rate must still be
    # run (they have not passed yet), so the shrink finds the lowest failing rate.
    def fast_kill_fails(example: Example) -> Outcome:
        if example.rate_per_s >= 150 and any(s.action == "kill" for s in example.faults):
            return Outcome(("no_lost_updates",), "fail", "lost")
        return Outcome((), "pass")

    result = search(fast_kill_fails, SOME, Budget(examples=400), 3, lambda _line: None)
    assert result.minimal is not None
    assert result.minimal.example.rate_per_s == 150


def test_every_target_is_drawn_about_as_often() -> None:
    # Pooled over three searches: Hypothesis varies the examples it has drawn, so one
    # search of 80 runs can give one target anything from 5% to 25% of its faults.
    drawn: list[str] = []
    for seed in (1, 2, 3):
        runs, record = passing_recorder()
        search(record, ACTIONS, Budget(examples=80), seed, lambda _line: None)
        drawn += [step.target for example in runs for step in example.faults]
    shares = {target: drawn.count(target) / len(drawn) for target in TARGETS}
    # Six targets: a sixth each on average. Drawing the action first gave the relay's
    # broker link about one fault in 30.
    assert min(shares.values()) >= 0.08, shares


def test_the_budget_stops_new_runs() -> None:
    runs, count = passing_recorder()
    result = search(count, ACTIONS, Budget(examples=7), 1, lambda _line: None)
    assert len(runs) == 7 and result.examples_tried == 7


def test_a_shrink_stops_when_the_budget_is_spent() -> None:
    # Every schedule with a broker pause fails: the first failure is found quickly, and
    # the budget ends the shrink early; the smallest failure so far is reported.
    def pause_fails(example: Example) -> Outcome:
        if any((s.action, s.target) == ("pause", "broker") for s in example.faults):
            return Outcome(("convergence",), "fail", "diverged")
        return Outcome((), "pass")

    result = search(pause_fails, SOME, Budget(examples=12), 4, lambda _line: None)
    assert result.budget_spent and result.first_failure is not None
    assert result.minimal is not None
    # No new example after the 12th run; only the confirming rerun of the last may follow,
    # and the steadiness reruns of the minimal case.
    assert len(result.runs) <= 13 + STEADY_RERUNS
    assert result.shrink_steps >= 1 and result.minimal.outcome.failed == ("convergence",)
    assert any((s.action, s.target) == ("pause", "broker")
               for s in result.minimal.example.faults)


@pytest.mark.parametrize(("text", "budget"), [("15m", Budget(seconds=900)),
                                              ("90s", Budget(seconds=90)),
                                              ("40", Budget(examples=40))])
def test_budget_parse(text: str, budget: Budget) -> None:
    assert Budget.parse(text) == budget


def test_budget_parse_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="15m, 90s or 40"):
        Budget.parse("soon")


@settings(max_examples=60, deadline=None)
@given(examples(ACTIONS))
def test_every_drawn_example_is_a_valid_scenario(example: Example) -> None:
    scenario = example.scenario()  # validates, or raises ConfigError
    assert 1 <= len(scenario.faults) <= 4
    assert all(s.action in EXPLORED_ACTIONS for s in scenario.faults)
    assert all(s.at_s < example.duration_s for s in scenario.faults)


def test_actions_a_broker_cannot_carry_out_are_not_drawn() -> None:
    without_raw = explored_actions(frozenset({caps.HOLD_AND_RELEASE}))
    assert "duplicate" not in without_raw and "poison" not in without_raw
    assert "reorder" in without_raw and "kill" in without_raw


@given(st.data())
def test_examples_are_sorted_by_time(data: st.DataObject) -> None:
    example = data.draw(examples(ACTIONS))
    times = [s.at_s for s in example.faults]
    assert times == sorted(times)


def test_hypothesis_does_not_cut_a_shrink_short_while_a_search_runs() -> None:
    before = engine.MAX_SHRINKING_SECONDS
    limits: list[float] = []

    def record(_example: Example) -> Outcome:
        limits.append(engine.MAX_SHRINKING_SECONDS)
        return Outcome((), "pass")

    search(record, SOME, Budget(examples=1), 1, lambda _line: None)
    assert limits and all(limit > 24 * 3600 for limit in limits)
    assert before == engine.MAX_SHRINKING_SECONDS
