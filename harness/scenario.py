"""Scenario definitions: typed, frozen, validated before anything starts.

A scenario is data: a workload, a schedule of faults, and deadlines. The runner turns it
into processes and threads; checks are chosen from what the scenario does.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from harness import consumers as keys
from harness.brokers.capabilities import DESCRIPTIONS, describe, missing
from harness.checkers.run_checks import DEFAULT_MIN_WRITE_SHARE
from harness.contract.grants import RESTRICTED_FIELDS
from harness.errors import ConfigError
from harness.faults.catalogue import ACTIONS, STREAMS, ParamRange
from harness.variants import DBS, POSTGRES, SQLITE
from harness.workload import WorkloadSpec


@dataclass(frozen=True)
class FaultStep:
    """One fault in a schedule, `at_s` seconds after the load starts.

    `jitter_s` adds a seeded random offset in [0, jitter_s]; `duration_s` is how long the
    fault stays before heal(); `params` overrides the action's parameter ranges; `stream`
    is the direction a toxic acts on (upstream: client to server).
    """

    action: str
    target: str
    at_s: float
    duration_s: float = 0.0
    jitter_s: float = 0.0
    params: Mapping[str, ParamRange] = field(default_factory=dict)
    stream: str = "downstream"

    def validate(self, where: str, targets: Sequence[str]) -> None:
        """`targets`: every component and link the scenario has (Scenario.targets)."""
        if self.action not in ACTIONS:
            raise ConfigError(f"{where}.action", f"unknown fault action {self.action!r}",
                              f"use one of: {', '.join(sorted(ACTIONS))}")
        action = ACTIONS[self.action]
        accepted = ", ".join(t for t in targets if action.accepts(t))
        if not action.accepts(self.target):
            raise ConfigError(f"{where}.target",
                              f"{self.action} cannot target {self.target!r}",
                              f"use one of: {accepted}")
        if self.target not in targets:
            raise ConfigError(f"{where}.target",
                              f"this scenario has no {self.target!r}",
                              "add a ConsumerSpec to the scenario's consumers (the k-th is "
                              "consumer<k>; instance n of one is <key>.i<n> with instances="
                              f"n or more), or use one of: {accepted}")
        if self.stream not in STREAMS:
            raise ConfigError(f"{where}.stream", f"unknown stream {self.stream!r}",
                              f"use one of: {', '.join(STREAMS)}")
        for name, value in (("at_s", self.at_s), ("duration_s", self.duration_s),
                            ("jitter_s", self.jitter_s)):
            _require_seconds(f"{where}.{name}", value)
        for name, given in self.params.items():
            if not isinstance(given, ParamRange):
                raise ConfigError(f"{where}.params.{name}",
                                  f"expected ParamRange, got {type(given).__name__}",
                                  f"write ParamRange({given!r}, {given!r}) for a fixed value")
        unknown = set(self.params) - set(ACTIONS[self.action].params)
        if unknown:
            accepted = ", ".join(ACTIONS[self.action].params) or "none"
            raise ConfigError(f"{where}.params", f"unknown parameters {sorted(unknown)}",
                              f"{self.action} accepts: {accepted}")
        # The action's defaults too: every range this step can draw from.
        for name, given in sorted({**ACTIONS[self.action].params, **self.params}.items()):
            _require_range(f"{where}.params.{name}", name, given)

    def resolve(self, rng: random.Random) -> tuple[float, dict[str, float]]:
        """Concrete start time and parameters for this run, drawn from the seed."""
        at = self.at_s + (rng.uniform(0, self.jitter_s) if self.jitter_s else 0.0)
        ranges = {**ACTIONS[self.action].params, **self.params}
        return at, {name: r.draw(rng) for name, r in sorted(ranges.items())}


# Bounds of fault parameters by name, whatever the action. Counts need at least one (zero
# copies or events would inject nothing and prove nothing); a bandwidth of 0 or a slice of
# 0 bytes never moves data; shares and flags lie in [0, 1]; every other parameter (times,
# delays, latencies, jitters, byte limits) is at least 0.
_AT_LEAST_ONE = frozenset({"after_hits", "copies", "count", "events", "per_kind"})
_ABOVE_ZERO = frozenset({"rate", "average_size"})
_SHARES = frozenset({"toxicity", "delete_queue"})


def _finite(value: object) -> bool:
    """A real number, neither NaN nor infinite (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def _require_seconds(where: str, value: float) -> None:
    if not _finite(value):
        raise ConfigError(where, f"must be a finite number of seconds, got {value!r}",
                          "give a non-negative number of seconds")
    if value < 0:
        raise ConfigError(where, f"must be >= 0, got {value}",
                          "give a non-negative number of seconds")


def _require_range(where: str, name: str, given: ParamRange) -> None:
    for bound in (given.low, given.high):
        if not _finite(bound):
            raise ConfigError(where, f"bounds must be finite numbers, got {bound!r}",
                              "write ParamRange(low, high) with numbers, e.g. "
                              "ParamRange(1, 2)")
    if given.low > given.high:
        raise ConfigError(where, f"inverted range: low {given.low} > high {given.high}",
                          f"write ParamRange({given.high}, {given.low})")
    if name in _AT_LEAST_ONE and given.low < 1:
        raise ConfigError(where, f"must be at least 1, got low {given.low}",
                          "give a count of 1 or more")
    if name in _ABOVE_ZERO and given.low <= 0:
        raise ConfigError(where, f"must be > 0, got low {given.low}", "give a positive value")
    if name in _SHARES and given.high > 1:
        raise ConfigError(where, f"must lie in [0, 1], got high {given.high}",
                          "give a value from 0 to 1")
    if given.low < 0:
        raise ConfigError(where, f"must be >= 0, got low {given.low}",
                          "give a non-negative value")


@dataclass(frozen=True)
class Repair:
    """After the load: detect divergence with the consumer's integrity verification, then
    trigger a resync by hand, as an operator would once the cause is understood: partial
    (the ids verification found) or full. "auto" triggers nothing: the consumer runs with
    --auto-resync known and must find and repair the divergence by itself."""

    resync: str = "partial"

    def validate(self, where: str) -> None:
        if self.resync not in ("partial", "full", "auto"):
            raise ConfigError(f"{where}.resync", f"unknown resync kind {self.resync!r}",
                              "use 'partial', 'full' or 'auto'")


# Fault actions that act on a consumer's first process alone (or on its whole subscription
# as if one process consumed it): with several instances the others would keep consuming
# and the fault would not do what it says.
_ONE_INSTANCE_ACTIONS = frozenset({"broker_data_loss", "full_resync_with_loss",
                                   "consumer_bug", "position_before_log"})
_CONSUMER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


@dataclass(frozen=True)
class ConsumerSpec:
    """A subscriber with its own name, queue (`<name>.product-events`), database and
    replica; its component key comes from its place in Scenario.consumers
    (harness/consumers.py).

    `instances` processes run under its name: they share its queue (competing for its
    messages) and its database, so its inbox dedupes across them. `join_at_s` > 0 starts
    it that many seconds into the load, after history exists; `initial_sync` makes it copy
    the publisher's dataset (full resync) when it joins. `grants`: the restricted fields
    (harness/contract/grants.py) the publisher lets it read; none by default, so every
    scenario checks that restricted values stay out of its replica."""

    name: str = "orders"
    join_at_s: float = 0.0
    initial_sync: bool = False
    instances: int = 1
    grants: tuple[str, ...] = ()

    def validate(self, where: str) -> None:
        if not isinstance(self.grants, tuple) or (
                self.grants and set(self.grants) != set(RESTRICTED_FIELDS)):
            raise ConfigError(f"{where}.grants", f"{self.grants!r} is not a grant",
                              f"give () or all restricted fields {RESTRICTED_FIELDS}")
        if not isinstance(self.name, str) or not _CONSUMER_NAME.fullmatch(self.name):
            raise ConfigError(f"{where}.name", f"{self.name!r} is not a consumer name",
                              "use lowercase letters, digits, '_' and '-', e.g. 'orders2'")
        if not _finite(self.join_at_s):
            raise ConfigError(f"{where}.join_at_s", f"must be finite, got {self.join_at_s!r}",
                              "give 0 to start with the others, or the seconds into the load")
        if self.join_at_s < 0:
            raise ConfigError(f"{where}.join_at_s", "must be >= 0",
                              "give 0 to start with the others, or the seconds into the load")
        if self.join_at_s > 0 and not self.initial_sync:
            raise ConfigError(f"{where}.initial_sync",
                              "a consumer joining late never receives the events published "
                              "before its queue existed", "give initial_sync=True")
        if isinstance(self.instances, bool) or not isinstance(self.instances, int) \
                or self.instances < 1:
            raise ConfigError(f"{where}.instances",
                              f"must be a whole number >= 1, got {self.instances!r}",
                              "give how many processes share this consumer's name")
        if self.instances > 1 and self.initial_sync:
            # The reference consumer's full resync holds only its own process's apply
            # lock: another instance's batch could commit between its export and its
            # replace, and the export's older state would overwrite it.
            raise ConfigError(f"{where}.instances",
                              "a consumer with initial_sync runs one instance: a full "
                              "resync is not safe against another process's batches",
                              "give instances=1, or initial_sync=False")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)
    faults: tuple[FaultStep, ...] = ()
    converge_timeout_s: float = 30.0
    settle_s: float = 1.0
    repair: Repair | None = None
    # Every subscriber; the first (component "consumer") starts with the system, and the
    # checks on the services' records, message faults and repairs rest on it.
    consumers: tuple[ConsumerSpec, ...] = (ConsumerSpec(),)
    # Share of the workload's planned writes that must succeed (the progress check); a
    # scenario whose faults are meant to make writes fail declares a lower one.
    min_write_share: float = DEFAULT_MIN_WRITE_SHARE
    # Broker capabilities the scenario needs beyond its faults' (e.g. consumer groups for a
    # rebalance, which no fault action by itself needs): harness/brokers/capabilities.py.
    requires: frozenset[str] = frozenset()
    # The services' databases it can run on (RunSettings.db): one whose fault needs
    # transactions committing out of order cannot run on SQLite, one writer at a time.
    dbs: tuple[str, ...] = DBS

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_write_share <= 1.0:
            raise ConfigError(f"{self.name}.min_write_share",
                              f"must be between 0 and 1, got {self.min_write_share}",
                              "give the share of planned writes that must succeed, e.g. 0.9")
        self._validate_consumers()
        if self.repair is not None:
            self.repair.validate(f"{self.name}.repair")
            if self.consumers[0].instances > 1:
                raise ConfigError(f"{self.name}.repair",
                                  "the repair phase verifies and resyncs through one "
                                  "process, and a resync's report stays in that process",
                                  "give the first consumer instances=1")
        if not self.name.isidentifier():
            raise ConfigError("name", f"{self.name!r} is not a valid scenario name",
                              "use lowercase letters, digits and underscores")
        unknown = sorted(set(self.requires) - set(DESCRIPTIONS))
        if unknown:
            raise ConfigError(f"{self.name}.requires", f"unknown capabilities {unknown}",
                              f"use some of: {', '.join(sorted(DESCRIPTIONS))}")
        if not self.dbs or not set(self.dbs) <= set(DBS):
            raise ConfigError(f"{self.name}.dbs", f"must name some of {', '.join(DBS)}, got "
                              f"{self.dbs!r}", f"give e.g. dbs=({DBS[-1]!r},)")
        for index, step in enumerate(self.faults):
            if not isinstance(step, FaultStep):
                raise ConfigError(f"{self.name}.faults[{index}]",
                                  f"expected FaultStep, got {type(step).__name__}",
                                  "build each entry with FaultStep(action=..., target=...)")
            self._validate_db_link(f"{self.name}.faults[{index}]", step)
            step.validate(f"{self.name}.faults[{index}]", self.targets)
            self._validate_fault_on_consumer(f"{self.name}.faults[{index}]", step)
        if not _finite(self.converge_timeout_s) or self.converge_timeout_s <= 0:
            raise ConfigError(f"{self.name}.converge_timeout_s",
                              f"must be a finite number > 0, got {self.converge_timeout_s!r}",
                              "give the seconds allowed to converge after the load")
        if not _finite(self.settle_s) or self.settle_s < 0:
            raise ConfigError(f"{self.name}.settle_s",
                              f"must be a finite number >= 0, got {self.settle_s!r}",
                              "give how long the replica must stay equal")

    def _validate_consumers(self) -> None:
        where = f"{self.name}.consumers"
        if not isinstance(self.consumers, tuple) or not self.consumers:
            raise ConfigError(where, "must be a non-empty tuple of ConsumerSpec",
                              "give consumers=(ConsumerSpec(),) for the one default consumer")
        names: dict[str, int] = {}
        for index, spec in enumerate(self.consumers):
            if not isinstance(spec, ConsumerSpec):
                raise ConfigError(f"{where}[{index}]",
                                  f"expected ConsumerSpec, got {type(spec).__name__}",
                                  "build each entry with ConsumerSpec(name=...)")
            spec.validate(f"{where}[{index}]")
            if spec.name in names:
                # One name is one queue: two specs would share it with two databases.
                raise ConfigError(f"{where}[{index}].name",
                                  f"{spec.name!r} is also consumers[{names[spec.name]}]'s "
                                  "name", "give each consumer its own name; for processes "
                                  "sharing one, set instances=")
            names[spec.name] = index
        if self.consumers[0].join_at_s:
            raise ConfigError(f"{where}[0].join_at_s",
                              "the first consumer starts with the system (the steady state, "
                              "message faults and repairs rest on it)",
                              "give it join_at_s=0, and let a later consumer join late")

    def _validate_db_link(self, where: str, step: FaultStep) -> None:
        if keys.role(step.target) == keys.db_link(keys.FIRST) and SQLITE in self.dbs:
            # A step on a link that does not exist would fail at run time, after set-up.
            raise ConfigError(f"{where}.target",
                              f"{step.target} is a consumer's connection to its PostgreSQL "
                              "database; on SQLite (a file) there is none",
                              f"give the scenario dbs=({POSTGRES!r},)")

    def _validate_fault_on_consumer(self, where: str, step: FaultStep) -> None:
        key = keys.owner(step.target)
        if key is None:
            return
        spec = self.by_key[key]
        # A late joiner does not exist before it joins (a fault at the same moment would
        # come first), so nothing can be done to it or its links until then.
        if spec.join_at_s > 0 and step.at_s <= spec.join_at_s:
            raise ConfigError(f"{where}.at_s",
                              f"{step.target} is faulted at {step.at_s}s, but {key} only "
                              f"joins at {spec.join_at_s}s",
                              f"schedule the fault after {spec.join_at_s}s, or let {key} "
                              "join earlier")
        if step.action in _ONE_INSTANCE_ACTIONS and spec.instances > 1:
            raise ConfigError(f"{where}.action",
                              f"{step.action} acts on {key}'s first process alone, while "
                              f"its {spec.instances - 1} other instance(s) keep consuming",
                              f"give {key} instances=1, or use kill, stop or pause on one "
                              "instance")

    @property
    def by_key(self) -> dict[str, ConsumerSpec]:
        """Each consumer by its component key (harness/consumers.py), in order."""
        return {keys.consumer_key(i): spec for i, spec in enumerate(self.consumers)}

    @property
    def targets(self) -> tuple[str, ...]:
        """Every component and link a fault step of this scenario may name."""
        found = ["broker", "publisher", "relay_broker"]
        for key, spec in self.by_key.items():
            found += [keys.instance_key(key, n) for n in range(spec.instances)]
            found += [keys.broker_link(key), keys.publisher_link(key)]
            if SQLITE not in self.dbs:  # on PostgreSQL only
                found.append(keys.db_link(key))
        return tuple(found)

    @property
    def needs(self) -> frozenset[str]:
        """Broker capabilities it requires itself and its faults use
        (harness/brokers/capabilities.py)."""
        return self.requires | frozenset(
            n for step in self.faults for n in ACTIONS[step.action].needs)

    def not_applicable_on(self, offered: frozenset[str], db: str | None = None) -> str:
        """Why it cannot run on a broker offering `offered` (and, given `db`, with the
        services on that database); "" when it can."""
        reasons = []
        if db is not None and db not in self.dbs:
            reasons.append(f"it needs the services on {' or '.join(self.dbs)} (run it with "
                           f"--db {self.dbs[0]}), not {db}")
        own = missing(self.requires, offered)
        if own:
            reasons.append(f"it needs what this broker does not have: {describe(own)}")
        by_faults = missing(set(self.needs) - set(own), offered)
        if by_faults:
            actions = sorted({s.action for s in self.faults
                              if set(ACTIONS[s.action].needs) & set(by_faults)})
            reasons.append(f"its faults ({', '.join(actions)}) need what this broker's "
                           f"adapter cannot do: {describe(by_faults)}")
        return "; and ".join(reasons)

    def rng(self, seed: int) -> random.Random:
        # One stream per scenario, derived from the run seed: adding a scenario to a run
        # does not change what another one does.
        return random.Random(f"{seed}:{self.name}")
