"""Fault actions a scenario can schedule by name, and how each is built."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.faults.base import Fault
from harness.faults.crash_point import CrashAtPoint
from harness.faults.process import CrashMidBatch, KillProcess, PauseProcess, StopProcess
from harness.runtime.base import Component
from reference_services.common.crashpoints import POINTS as CRASH_POINT_NAMES


@dataclass(frozen=True)
class ParamRange:
    """A parameter drawn from the scenario's seeded Random: uniform in [low, high]."""

    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        return self.low if self.low == self.high else rng.uniform(self.low, self.high)


Builder = Callable[[Component, Mapping[str, float]], Fault]


def _crash_mid_batch(component: Component, params: Mapping[str, float]) -> Fault:
    return CrashMidBatch(component, backlog_s=params["backlog_s"], delay_s=params["delay_s"])


@dataclass(frozen=True)
class FaultAction:
    build: Builder
    params: Mapping[str, ParamRange]  # accepted parameters and their defaults
    description: str


def _crash_point(point: str) -> Builder:
    return lambda component, params: CrashAtPoint(component, point,
                                                  int(params.get("after_hits", 1)))


ACTIONS: dict[str, FaultAction] = {
    "kill": FaultAction(lambda c, _p: KillProcess(c), {}, "SIGKILL; heal restarts it"),
    "stop": FaultAction(lambda c, _p: StopProcess(c), {}, "graceful stop; heal starts it"),
    "pause": FaultAction(lambda c, _p: PauseProcess(c), {}, "SIGSTOP; heal sends SIGCONT"),
    "crash_mid_batch": FaultAction(
        _crash_mid_batch,
        {"backlog_s": ParamRange(0.6, 1.2), "delay_s": ParamRange(0.005, 0.03)},
        "freeze to build a backlog, thaw, SIGKILL while draining it; heal restarts it"),
    **{
        f"crash_point:{point}": FaultAction(
            _crash_point(point), {"after_hits": ParamRange(1, 1)},
            f"the service SIGKILLs itself at {point}; heal restarts it")
        for point in sorted(CRASH_POINT_NAMES)
    },
}

TARGETS = ("broker", "publisher", "consumer")
