"""Restricted data and credentials (docs/authorization.md).

- authorization: three consumers under load with frequent changes to the restricted
  field: `orders` granted it, `audit` not, and `audit_late`, not granted either, joining
  5 s in (a full resync through the export, then the stream). A partial and a full resync
  run on each of the first two while the load goes on, and the publisher's read endpoints
  are called with every consumer's credential. The restricted values must reach no replica
  of a consumer without the grant by any path (events, export, batch fetch, catch-up), and
  the granted one must converge on them, each checked against the source as that consumer
  may see it.
- unauthorized_calls: every endpoint of the publisher and of both consumers (but the
  product writes and /health, open by design) is called under load with no credential, a
  wrong one and, where the admin's is needed, each consumer's: every call is refused (401
  or 403) and the state it would change reads the same after.
"""

from harness.contract.grants import RESTRICTED_FIELDS
from harness.scenario import ConsumerSpec, FaultStep, Scenario
from harness.workload import WorkloadSpec

# Updates are half the writes, and a quarter of the fields they change are the note.
_LOAD = WorkloadSpec(rate_per_s=150, duration_s=10, initial_products=50,
                     mix=(("create", 0.15), ("update", 0.5), ("stock", 0.25), ("delete", 0.1)))
_GRANTED = ConsumerSpec("orders", grants=RESTRICTED_FIELDS)

SCENARIOS = (
    Scenario(
        name="authorization",
        description="a consumer granted the restricted field, one not, and a late joiner "
                    "not; partial and full resyncs under load: the field reaches no "
                    "unauthorized replica by any path, the authorized one converges",
        workload=_LOAD,
        consumers=(_GRANTED, ConsumerSpec("audit"),
                   ConsumerSpec("audit_late", join_at_s=5.0, initial_sync=True)),
        faults=(FaultStep("resync_partial", "consumer2", at_s=2.0),
                FaultStep("resync_partial", "consumer", at_s=2.5),
                FaultStep("resync_full", "consumer2", at_s=3.5),
                FaultStep("resync_full", "consumer", at_s=6.5),
                FaultStep("unauthorized_calls", "publisher", at_s=8.0)),
    ),
    Scenario(
        name="unauthorized_calls",
        description="every endpoint called with no credential, a wrong one and a "
                    "consumer's where the admin's is needed: refused (401/403), nothing "
                    "changes",
        workload=WorkloadSpec(rate_per_s=100, duration_s=6, initial_products=30),
        consumers=(_GRANTED, ConsumerSpec("audit")),
        faults=(FaultStep("unauthorized_calls", "publisher", at_s=1.5),
                FaultStep("unauthorized_calls", "consumer", at_s=3.0),
                FaultStep("unauthorized_calls", "consumer2", at_s=4.0)),
    ),
)
