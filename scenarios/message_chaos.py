"""Message-level chaos: what the broker delivers is not what was published.

- duplicates: recent events delivered twice more, twice: each takes effect once;
- reordering: the consumer's events held for 2 s, then delivered newest first: no row
  ever goes back to an older version (brokers that can hold events back: RabbitMQ);
- stale_redelivery: older versions of recent events produced again after newer ones,
  under new event ids, twice: what reordering looks like on a log that keeps each
  aggregate's order (Kafka), and runs on every broker that takes raw bytes; only the
  consumer's version check, not its inbox, keeps the replica from going back;
- poison_payloads: every kind of unprocessable message, twice: each is dead-lettered with
  its reason, the rest flows, injected = dead-lettered.
"""

from harness.scenario import FaultStep, Scenario
from harness.workload import WorkloadSpec

_LOAD = WorkloadSpec(rate_per_s=150, duration_s=10, initial_products=50,
                     mix=(("create", 0.1), ("update", 0.3), ("stock", 0.5), ("delete", 0.1)))

SCENARIOS = (
    Scenario(
        name="duplicates",
        description="recent events redelivered 2 extra times, twice; effect once",
        workload=_LOAD,
        faults=(FaultStep("duplicate", "consumer", at_s=3.0),
                FaultStep("duplicate", "consumer", at_s=7.0)),
    ),
    Scenario(
        name="reordering",
        description="events held 2 s then delivered newest first, twice; no stale overwrite",
        workload=_LOAD,
        faults=(FaultStep("reorder", "consumer", at_s=2.0, duration_s=2.0),
                FaultStep("reorder", "consumer", at_s=6.0, duration_s=2.0)),
    ),
    Scenario(
        name="stale_redelivery",
        description="older versions of recent events produced again after newer ones, "
                    "under new event ids, twice; no stale overwrite",
        workload=_LOAD,
        faults=(FaultStep("redeliver_stale", "consumer", at_s=3.0),
                FaultStep("redeliver_stale", "consumer", at_s=7.0)),
    ),
    Scenario(
        name="poison_payloads",
        description="malformed JSON, unknown type, missing/wrong fields, unknown schema "
                    "version, oversized...: dead-lettered with reasons, the rest flows",
        workload=_LOAD,
        faults=(FaultStep("poison", "consumer", at_s=2.0),
                FaultStep("poison", "consumer", at_s=6.0)),
    ),
)
