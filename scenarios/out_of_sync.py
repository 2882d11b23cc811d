"""Out-of-sync replicas and their repair (docs/architecture.md, "How replicas drift").

In each, something makes the replica silently wrong; after the load, the consumer's
integrity verification (counts, categories, dataset hash, then range-hash bisection) must
find the divergent ids, and a manually triggered resync must make the replica converge.

- publisher_skips_events: the relay marks 40 events sent without publishing them;
- publisher_wrong_data: the relay sends 30 upserts with wrong, valid-looking values;
- consumer_bug: a consumer defect (names truncated) is live for 4 s, then fixed: the rows
  it wrote stay wrong until the resync, which only helps once the fix is deployed;
- broker_data_loss: the broker loses the consumer's queued events while it is down; a
  full resync (export + catch-up from its high-water mark) repairs.
"""

from harness.scenario import FaultStep, Repair, Scenario
from harness.workload import WorkloadSpec

_LOAD = WorkloadSpec(rate_per_s=150, duration_s=8, initial_products=80,
                     mix=(("create", 0.15), ("update", 0.4), ("stock", 0.35), ("delete", 0.1)))

# A skipped event leaves no divergence once a later write to the same product replaces it
# (a full-state upsert, a delete, or a stock delta that makes the consumer fetch the
# product). Skipped 2 s into the load, every one was healed in about 1 run in 100; skipped
# this late, the writes left can reach only some of the products (simulated over 300
# seeds of this workload: at least 4 of the 40 skipped events stay divergent, ~10 on
# average). If none does, the integrity check reports the run inconclusive, not failed.
_SKIP_LATE = FaultStep("relay_drop", "publisher", at_s=6.5, duration_s=1.0)

SCENARIOS = (
    Scenario(
        name="publisher_skips_events",
        description="the relay skips 40 events; verification finds the ids, partial resync "
                    "repairs",
        workload=_LOAD,
        faults=(_SKIP_LATE,),
        repair=Repair("partial"),
    ),
    Scenario(
        name="publisher_skips_events_auto",
        description="the relay skips 40 events; the consumer's periodic verification finds "
                    "and repairs them by itself (--auto-resync known)",
        workload=_LOAD,
        faults=(_SKIP_LATE,),
        repair=Repair("auto"),
    ),
    Scenario(
        name="publisher_wrong_data",
        description="the relay sends 30 wrong but valid upserts; verification finds them, "
                    "partial resync repairs",
        workload=_LOAD,
        # Late in the load, so later writes do not overwrite every corrupted row by chance.
        faults=(FaultStep("relay_corrupt", "publisher", at_s=6.5, duration_s=1.0),),
        repair=Repair("partial"),
    ),
    Scenario(
        name="consumer_bug",
        description="a consumer bug writes wrong names for 4 s, then is fixed; verification "
                    "detects, a manual resync after the fix repairs",
        workload=_LOAD,
        faults=(FaultStep("consumer_bug", "consumer", at_s=1.5, duration_s=4.0),),
        repair=Repair("partial"),
    ),
    Scenario(
        name="broker_data_loss",
        description="the consumer's queued events are purged while it is down; detected, "
                    "full resync repairs",
        workload=_LOAD,
        faults=(FaultStep("broker_data_loss", "consumer", at_s=2.0),),
        repair=Repair("full"),
    ),
)
