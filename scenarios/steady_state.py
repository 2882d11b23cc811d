"""steady_state: no fault. The baseline every other scenario is compared with."""

from harness.scenario import Scenario
from harness.workload import WorkloadSpec

SCENARIOS = (
    Scenario(
        name="steady_state",
        description="200 writes/s for 8 s with no fault: the replica converges; "
                    "baseline lag and throughput",
        workload=WorkloadSpec(rate_per_s=200, duration_s=8, initial_products=50),
        converge_timeout_s=20,
        settle_s=1.0,
    ),
)
