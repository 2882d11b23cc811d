"""A full resync in the middle of the load, with a real gap after its export.

- full_resync_under_load: 3 to 4 s into the load, the consumer's queued events are lost
  and it stops receiving for a moment; a full resync runs meanwhile, and the events
  published after its export's high-water mark H, up to a boundary the harness reads
  itself, are deleted from the queue: they reach the replica only through the resync's
  catch-up (GET /events?after=H), while later events arrive through the queue during the
  catch-up. Must hold: converge; every event above H processed exactly once; no stale
  overwrite (products deleted before H stay deleted whatever older event comes later).
"""

from harness.scenario import FaultStep, Scenario
from harness.workload import WorkloadSpec

SCENARIOS = (
    Scenario(
        name="full_resync_under_load",
        description="a full resync mid-load while the consumer's backlog is lost: events "
                    "after the export's high-water mark arrive only through its catch-up",
        workload=WorkloadSpec(rate_per_s=150, duration_s=8, initial_products=80,
                              mix=(("create", 0.15), ("update", 0.4), ("stock", 0.35),
                                   ("delete", 0.1))),
        faults=(FaultStep("full_resync_with_loss", "consumer", at_s=3.0, jitter_s=1.0),),
    ),
)
