"""The scenario catalogue. Each module defines SCENARIOS: a tuple of Scenario objects.

See scenarios/README.md for how to write one.
"""

from __future__ import annotations

from harness.scenario import Scenario
from scenarios import (
    authorization,
    broker_outage,
    consumer_crash,
    consumer_down_long,
    crash_points,
    kafka_groups,
    message_chaos,
    network_faults,
    out_of_sync,
    outbox_order,
    publisher_crash,
    resync_under_load,
    steady_state,
    subscribers,
)

MODULES = (steady_state, consumer_crash, crash_points, consumer_down_long, broker_outage,
           network_faults, message_chaos, out_of_sync, subscribers, publisher_crash,
           resync_under_load, kafka_groups, outbox_order, authorization)


def all_scenarios() -> dict[str, Scenario]:
    catalogue: dict[str, Scenario] = {}
    for module in MODULES:
        for scenario in module.SCENARIOS:
            if scenario.name in catalogue:
                raise ValueError(f"scenario {scenario.name!r} is defined twice")
            catalogue[scenario.name] = scenario
    return catalogue
