"""Crash points: the relay and the consumer SIGKILL themselves at the worst moments.

- relay.after_commit_before_publish: rows read from the outbox, not yet published: the
  outbox keeps them and the restarted relay publishes them;
- relay.after_publish_before_mark_sent: published and confirmed, not marked sent: the
  restarted relay publishes them again and the consumer's inbox drops the duplicates;
- consumer.before_commit: the batch's transaction never commits, nothing was acked:
  redelivered and applied once;
- consumer.after_apply_before_ack: committed but not acked: redelivered, deduplicated.
"""

from harness.scenario import FaultStep, Scenario
from harness.workload import WorkloadSpec

_LOAD = WorkloadSpec(rate_per_s=200, duration_s=10, initial_products=50,
                     mix=(("create", 0.1), ("update", 0.25), ("stock", 0.6), ("delete", 0.05)))

SCENARIOS = (
    Scenario(
        name="relay_crash_points",
        description="relay killed after commit/before publish and after publish/before "
                    "mark-sent; nothing lost, duplicates harmless",
        workload=_LOAD,
        faults=(
            FaultStep("crash_point:relay.after_commit_before_publish", "publisher", at_s=2.0),
            FaultStep("crash_point:relay.after_publish_before_mark_sent", "publisher",
                      at_s=5.5),
        ),
        converge_timeout_s=30,
        # The relay runs inside the publisher: each crash takes its API down until the
        # restart, and the writes meanwhile fail (7 to 9% of them over two crashes).
        min_write_share=0.75,
    ),
    Scenario(
        name="consumer_crash_points",
        description="consumer killed before its commit and after commit/before ack; "
                    "redelivery applied once",
        workload=_LOAD,
        faults=(
            FaultStep("crash_point:consumer.before_commit", "consumer", at_s=2.0),
            FaultStep("crash_point:consumer.after_apply_before_ack", "consumer", at_s=5.5),
        ),
        converge_timeout_s=30,
    ),
)
