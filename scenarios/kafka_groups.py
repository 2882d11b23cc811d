"""Consumer groups and their positions in the log: what only a partitioned log has
(a broker offering capabilities.CONSUMER_GROUPS, i.e. Kafka; not applicable on RabbitMQ,
whose queues have neither partitions nor positions).

- group_rebalance: one consumer as two instances of one group on the events topic
  (naming.EVENTS_PARTITIONS = 4 partitions, two each). Under load the second is SIGKILLed:
  its partitions stall until the group expires its session, then move to the first, which
  resumes each from the position stored in the shared database. Restarted, it joins the
  group again and partitions move back. Nothing lost, nothing applied twice, converges.
- offset_reset: while the consumer is stopped, the broker loses the log past the
  consumer's stored positions (they now point before the log's start). Restarted, it must
  report the loss (an offset out of range, or a log starting after its position) rather
  than resume silently from wherever the client resets it; a full resync (export, then
  catch-up from its high-water mark) repairs the replica.
"""

from harness.brokers import capabilities as caps
from harness.scenario import ConsumerSpec, FaultStep, Repair, Scenario
from harness.workload import WorkloadSpec

SCENARIOS = (
    Scenario(
        name="group_rebalance",
        description="one consumer as two instances of a group on 4 partitions: one "
                    "SIGKILLed, its partitions move to the other, it rejoins; nothing "
                    "lost, no double effect",
        workload=WorkloadSpec(rate_per_s=150, duration_s=14, initial_products=50),
        consumers=(ConsumerSpec(instances=2),),
        # Down longer than the group's session (6 s, reference_services/common/kafka.py),
        # so its partitions move to the survivor before it rejoins and they move again.
        faults=(FaultStep("kill", "consumer.i2", at_s=3.0, jitter_s=1.0, duration_s=8.0),),
        requires=frozenset({caps.CONSUMER_GROUPS}),
    ),
    Scenario(
        name="offset_reset",
        description="the log is lost past a stopped consumer's stored positions; on "
                    "restart it reports the loss, a full resync repairs",
        workload=WorkloadSpec(rate_per_s=150, duration_s=8, initial_products=80,
                              mix=(("create", 0.15), ("update", 0.4), ("stock", 0.35),
                                   ("delete", 0.1))),
        faults=(FaultStep("position_before_log", "consumer", at_s=2.0),),
        repair=Repair("full"),
        requires=frozenset({caps.CONSUMER_GROUPS}),
    ),
)
