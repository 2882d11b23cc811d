"""Outbox rows that commit out of sequence order (PostgreSQL only).

- outbox_commit_order: load with 2 writes in flight while the publisher holds 3 write
  transactions, one after another, open for 1 s after their outbox insert, twice: the
  write issued meanwhile takes a higher sequence number and commits first. Must hold:
  every committed event is published and applied (no_lost_updates,
  acknowledged_writes_published, tap_matches_outbox), converge. A relay that reads "after
  the last sequence I sent" skips every held row for good (variant
  relay_by_sequence_only). The rate is low, so writes rarely overlap by themselves: the
  steady state, proven before the first fault, must not depend on luck with that relay,
  which skips a row overtaken that way too.

On SQLite one writer runs at a time, so sequence order is commit order and the fault
cannot happen: the scenario is not applicable there.
"""

from harness.faults.catalogue import ParamRange
from harness.scenario import FaultStep, Scenario
from harness.variants import POSTGRES
from harness.workload import WorkloadSpec

SCENARIOS = (
    Scenario(
        name="outbox_commit_order",
        description="write transactions held open after their outbox insert while later "
                    "writes commit first (rows visible out of sequence order), twice, "
                    "under concurrent load: every event still published",
        workload=WorkloadSpec(rate_per_s=40, duration_s=12, initial_products=20,
                              concurrency=2),
        # 3 holds of 1 s one after another; healed once they are over, so the evidence
        # counts them all.
        faults=tuple(FaultStep("commit_delay", "publisher", at_s=at_s, duration_s=4.0,
                               params={"count": ParamRange(3, 3)})
                     for at_s in (1.0, 6.5)),
        dbs=(POSTGRES,),
    ),
)
