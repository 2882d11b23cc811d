"""More than one subscriber.

- fan_out: two consumers, each with its own queue; the second is stopped for 5 s under
  load. The first must not notice (its lag stays low while the other is down); the second
  catches up from its durable queue; both converge.
- late_joiner: a second consumer starts 5 s into the load, when history already exists.
  It subscribes, then copies the publisher's dataset (full resync at its high-water mark)
  and streams from there: no gap, no double apply, converges like the first.
"""

from harness.scenario import FaultStep, Scenario, SecondConsumer
from harness.workload import WorkloadSpec

_LOAD = WorkloadSpec(rate_per_s=150, duration_s=10, initial_products=50)

SCENARIOS = (
    Scenario(
        name="fan_out",
        description="two consumers, one stopped 5 s under load: the other is unaffected, "
                    "the stopped one catches up",
        workload=_LOAD,
        second_consumer=SecondConsumer(),
        faults=(FaultStep("stop", "consumer2", at_s=2.0, duration_s=5.0),),
    ),
    Scenario(
        name="late_joiner",
        description="a second consumer joins 5 s into the load: full resync, then stream; "
                    "no gap, no double apply",
        workload=_LOAD,
        second_consumer=SecondConsumer(join_at_s=5.0, initial_sync=True),
    ),
)
