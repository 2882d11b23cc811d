"""More than one subscriber, or more than one process of one subscriber.

- fan_out: two consumers, each with its own queue; the second is stopped for 5 s under
  load. The first must not notice (its lag stays low while the other is down); the second
  catches up from its durable queue; both converge.
- late_joiner: a second consumer starts 5 s into the load, when history already exists.
  It subscribes, then copies the publisher's dataset (full resync at its high-water mark)
  and streams from there: no gap, no double apply, converges like the first.
- competing_instances: one consumer run as two processes on its one queue and one
  database, competing for its messages at 200 writes/s. The first is SIGKILLed mid-load
  and restarted; then the last 300 events are delivered twice more, spread over both;
  then the second kills itself after committing a batch and before acknowledging it, so
  the broker hands that batch to the first. The inbox is in the one database, so each
  process drops what the other applied; events of one product applied by the two out of
  order are stale or fetched from the publisher, never applied twice: nothing lost, no
  double effect, converges.
"""

from harness.scenario import ConsumerSpec, FaultStep, Scenario
from harness.workload import WorkloadSpec

_LOAD = WorkloadSpec(rate_per_s=150, duration_s=10, initial_products=50)

SCENARIOS = (
    Scenario(
        name="fan_out",
        description="two consumers, one stopped 5 s under load: the other is unaffected, "
                    "the stopped one catches up",
        workload=_LOAD,
        consumers=(ConsumerSpec(), ConsumerSpec("orders2")),
        faults=(FaultStep("stop", "consumer2", at_s=2.0, duration_s=5.0),),
    ),
    Scenario(
        name="late_joiner",
        description="a second consumer joins 5 s into the load: full resync, then stream; "
                    "no gap, no double apply",
        workload=_LOAD,
        consumers=(ConsumerSpec(), ConsumerSpec("orders2", join_at_s=5.0, initial_sync=True)),
    ),
    Scenario(
        name="competing_instances",
        description="one consumer as two processes on one queue and database: one "
                    "SIGKILLed, duplicates spread over both, the other killed between "
                    "commit and ack: nothing lost, no double effect",
        workload=WorkloadSpec(rate_per_s=200, duration_s=10, initial_products=50),
        consumers=(ConsumerSpec(instances=2),),
        faults=(FaultStep("kill", "consumer", at_s=2.5, jitter_s=1.0),
                FaultStep("duplicate", "consumer", at_s=5.0, jitter_s=0.5),
                FaultStep("crash_point:consumer.after_apply_before_ack", "consumer.i2",
                          at_s=7.5, jitter_s=0.5)),
    ),
)
