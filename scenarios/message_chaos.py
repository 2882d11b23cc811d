"""Message-level chaos: what the broker delivers is not what was published.

- duplicates: recent events delivered twice more, twice: each takes effect once;
- reordering: the consumer's events held for 2 s, then delivered newest first: no row
  ever goes back to an older version;
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
        name="poison_payloads",
        description="malformed JSON, unknown type, missing/wrong fields, unknown schema "
                    "version, oversized...: dead-lettered with reasons, the rest flows",
        workload=_LOAD,
        faults=(FaultStep("poison", "consumer", at_s=2.0),
                FaultStep("poison", "consumer", at_s=6.0)),
    ),
)
