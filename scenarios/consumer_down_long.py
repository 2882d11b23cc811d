"""consumer_down_long: the consumer is stopped for 8 s while writes go on; when it comes
back it catches up from its durable queue and the replica converges."""

from harness.scenario import FaultStep, Scenario
from harness.workload import WorkloadSpec

SCENARIOS = (
    Scenario(
        name="consumer_down_long",
        description="consumer stopped for 8 s under load; catches up from its durable queue",
        workload=WorkloadSpec(rate_per_s=200, duration_s=14, initial_products=50),
        faults=(FaultStep("stop", "consumer", at_s=2.0, duration_s=8.0, jitter_s=0.5),),
        converge_timeout_s=40,
        settle_s=1.0,
    ),
)
