"""consumer_crash: the consumer is SIGKILLed in the middle of a batch, three times.

Each crash freezes the consumer long enough for a backlog to build, thaws it and kills it a
few milliseconds later, while it is between receiving messages and acknowledging them.
Redelivery must be harmless: every stock delta takes effect exactly once.
"""

from harness.scenario import FaultStep, Scenario
from harness.workload import WorkloadSpec

SCENARIOS = (
    Scenario(
        name="consumer_crash",
        description="consumer SIGKILLed mid-batch 3 times under load; redelivery is harmless "
                    "(effect once) and the replica converges",
        workload=WorkloadSpec(rate_per_s=200, duration_s=12, initial_products=50,
                              mix=(("create", 0.1), ("update", 0.2), ("stock", 0.65),
                                   ("delete", 0.05))),
        faults=(
            FaultStep("crash_mid_batch", "consumer", at_s=1.5, jitter_s=0.5),
            FaultStep("crash_mid_batch", "consumer", at_s=5.0, jitter_s=0.5),
            FaultStep("crash_mid_batch", "consumer", at_s=8.5, jitter_s=0.5),
        ),
        converge_timeout_s=30,
        settle_s=1.0,
    ),
)
