"""What `harness explore` draws: a workload shape and a schedule of faults, as Hypothesis
strategies over the fault catalogue (harness/faults/catalogue.py).

Every choice is ordered so that Hypothesis's shrinker, which prefers fewer list entries,
smaller integers and earlier `sampled_from` entries, moves toward a simpler schedule:
fewer faults, earlier and shorter ones, the plainer actions and targets first, the
catalogue's own parameters rather than drawn ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hypothesis import strategies as st

from harness.brokers.capabilities import missing
from harness.consumers import FIRST
from harness.contract.crash_points import POINTS
from harness.faults.catalogue import ACTIONS, ParamRange
from harness.links import CONSUMER_BROKER, CONSUMER_PUBLISHER, RELAY_BROKER
from harness.scenario import FaultStep, Scenario
from harness.workload import WorkloadSpec

# Actions a correct system must survive with no repair, simplest first. Left out: those
# that inject a defect or destroy data (relay_drop, relay_corrupt, consumer_bug,
# broker_data_loss, position_before_log, full_resync_with_loss: the catalogue's scenarios
# pair them with a repair), calls that are probes rather than faults
# (unauthorized_calls, resync_*), and commit_delay (PostgreSQL only).
# The crash points come first of all: each crashes at one exact place, so a shrink that
# swaps a fault whose timing decides whether it meets a batch in flight (crash_mid_batch,
# a kill or a graceful stop under load) for one of them makes the minimal case fail every
# time it is replayed. With the lasting actions first, a search for ack_before_commit
# shrank to `stop consumer`, which failed five runs in the search and then 1 of 3 replays
# passed.
INSTANT = (*(f"crash_point:{point}" for point in sorted(POINTS)), "crash_mid_batch",
           "duplicate", "redeliver_stale", "poison")
LASTING = ("pause", "stop", "kill", "link_down", "latency", "reset_peer", "timeout",
           "bandwidth", "slicer", "limit_data", "slow_close", "reorder")
EXPLORED_ACTIONS = INSTANT + LASTING
# Targets in the order a shrink prefers them; the database link exists on PostgreSQL only
# and is not explored.
TARGETS = (FIRST, "publisher", "broker", CONSUMER_BROKER, RELAY_BROKER, CONSUMER_PUBLISHER)

# Parameters drawn instead of the catalogue's fixed defaults: name -> (simplest, most).
# Whole numbers, so a stored schedule reads back exactly.
DRAWN_PARAMS: Mapping[str, Mapping[str, tuple[int, int]]] = {
    "duplicate": {"events": (50, 300), "copies": (1, 3)},
    "latency": {"latency": (100, 1500), "jitter": (0, 100)},
    "redeliver_stale": {"count": (10, 60)},
}

# Bounds in tenths of a second. A fault comes at least 1 s into the load (the steady-state
# proof before the first fault needs something replicated) and starts before it ends.
MIN_AT_TENTHS = 10
MAX_DURATION_TENTHS = 40  # a lasting fault's duration: 0 to 4 s
# Writes per second: (simplest, most). Not lower: a crash in the middle of a batch meets
# one only now and then at 50/s, and a minimal case shrunk to such a rate failed twice in
# a search and then passed when replayed.
RATES = (120, 200)
# Seconds of load: what an example costs beyond about 4 s of its own (set-up, settling,
# collecting, tear-down on a kept broker), so short, yet long enough for a fault at 1 s
# to meet a steady load before and after it.
DURATIONS_S = (4, 8)
MAX_FAULTS = 4
# The most faults an example may have, drawn first: 1 or 2 twice as often as 3 or 4.
FAULT_LIMITS = (1, 1, 2, 2, 3, MAX_FAULTS)
CONVERGE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Example:
    """One drawn run: a load of `rate_per_s` writes/s for `duration_s` s, and `faults`."""

    rate_per_s: int
    duration_s: int
    faults: tuple[FaultStep, ...]

    def describe(self) -> str:
        """One line, e.g. "150/s for 8 s: kill consumer @2.3s for 1.0s; duplicate ...". """
        steps = "; ".join(
            f"{s.action} {s.target} @{s.at_s:g}s"
            + (f" for {s.duration_s:g}s" if s.duration_s else "")
            + (f" {s.stream}" if s.stream != "downstream" else "")
            + (" " + ",".join(f"{k}={v.low:g}" for k, v in s.params.items()) if s.params
               else "")
            for s in self.faults)
        return f"{self.rate_per_s}/s for {self.duration_s} s: {steps or 'no faults'}"

    def key(self) -> str:
        """A text equal for equal examples (a FaultStep's params mapping is not hashable)."""
        return repr(self)

    @staticmethod
    def from_scenario(scenario: Scenario) -> Example:
        """The example a scenario written by Example.scenario holds (ValueError for a
        scenario whose workload is not one a search draws)."""
        workload = scenario.workload
        if workload.rate_per_s != int(workload.rate_per_s) \
                or workload.duration_s != int(workload.duration_s):
            raise ValueError(f"{scenario.name}: not a drawn workload ({workload})")
        return Example(int(workload.rate_per_s), int(workload.duration_s), scenario.faults)

    def scenario(self, name: str = "explore") -> Scenario:
        """The example as a scenario. Every example of a search has the same name: the
        workload's seeded stream derives from it, so the minimal case run again with
        `harness run --scenario-file` and the same seed offers the same writes."""
        return Scenario(
            name=name,
            description=f"drawn by harness explore: {self.describe()}",
            workload=WorkloadSpec(rate_per_s=self.rate_per_s, duration_s=self.duration_s),
            faults=self.faults,
            # A publisher that is down fails writes, and a short fault may leave no lag
            # to measure: a search judges the system by its findings (see
            # search.RUN_CHECKS), so the load only has to be half done to count.
            min_write_share=0.5,
            # A failing example that never converges waits this long, twice (its rerun):
            # shorter than the catalogue's 30 s, still well above the few seconds a
            # correct system needs after faults of at most 4 s each.
            converge_timeout_s=CONVERGE_TIMEOUT_S)


def explored_actions(offered: frozenset[str]) -> tuple[str, ...]:
    """The explored actions a broker offering `offered` capabilities can carry out."""
    return tuple(a for a in EXPLORED_ACTIONS if not missing(ACTIONS[a].needs, offered))


def _targets(actions: tuple[str, ...]) -> list[str]:
    return [t for t in TARGETS if any(ACTIONS[a].accepts(t) for a in actions)]


@st.composite
def fault_steps(draw: st.DrawFn, actions: tuple[str, ...], load_s: int) -> FaultStep:
    # The target first, then an action it accepts: every part of the system (each
    # component, each link) is hit about as often. Drawn the other way round, the many
    # actions on components (crash points, kills, message faults) crowded out the links,
    # and a bug only a link fault shows (a relay marking rows sent before the broker has
    # them) was met once in 50 runs.
    target = draw(st.sampled_from(_targets(actions)))
    action = draw(st.sampled_from([a for a in actions if ACTIONS[a].accepts(target)]))
    at_s = draw(st.integers(MIN_AT_TENTHS, max(MIN_AT_TENTHS, 10 * load_s - 10))) / 10
    duration_s = 0.0
    if action in LASTING:
        duration_s = draw(st.integers(0, MAX_DURATION_TENTHS)) / 10
    stream = "downstream"
    if target in (CONSUMER_BROKER, RELAY_BROKER, CONSUMER_PUBLISHER) \
            and action != "link_down":
        stream = draw(st.sampled_from(("downstream", "upstream")))
    params: dict[str, ParamRange] = {}
    for name, (low, high) in DRAWN_PARAMS.get(action, {}).items():
        value = draw(st.integers(low, high))
        params[name] = ParamRange(value, value)
    return FaultStep(action=action, target=target, at_s=at_s, duration_s=duration_s,
                     params=params, stream=stream)


@st.composite
def examples(draw: st.DrawFn, actions: tuple[str, ...]) -> Example:
    """Examples whose faults are drawn from `actions` (see explored_actions)."""
    rate = draw(st.integers(*RATES))
    duration_s = draw(st.integers(*DURATIONS_S))
    # Short schedules first: a failure found with 1 or 2 faults is shrunk in a few runs,
    # one with 4 in dozens, at 20 s or more each.
    most = draw(st.sampled_from(FAULT_LIMITS))
    steps = draw(st.lists(fault_steps(actions, duration_s), min_size=1, max_size=most))
    # The runner applies faults in time order; stored in that order they read as a
    # timeline.
    return Example(rate, duration_s, tuple(sorted(steps, key=lambda s: s.at_s)))
