"""The scenario catalogue. Each module defines SCENARIOS: a tuple of Scenario objects.

See scenarios/README.md for how to write one.
"""

from __future__ import annotations

from harness.scenario import Scenario
from scenarios import (
    broker_outage,
    consumer_crash,
    consumer_down_long,
    crash_points,
    network_faults,
    steady_state,
)

MODULES = (steady_state, consumer_crash, crash_points, consumer_down_long, broker_outage,
           network_faults)


def all_scenarios() -> dict[str, Scenario]:
    catalogue: dict[str, Scenario] = {}
    for module in MODULES:
        for scenario in module.SCENARIOS:
            if scenario.name in catalogue:
                raise ValueError(f"scenario {scenario.name!r} is defined twice")
            catalogue[scenario.name] = scenario
    return catalogue
