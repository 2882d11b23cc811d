"""Known-buggy variants of the reference services (docs/architecture.md, "Bug variants").

Each switches one bug into one service, so a scenario can prove its checkers catch it.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import ConfigError


@dataclass(frozen=True)
class Variant:
    name: str
    service: str  # "publisher" or "consumer"
    bug: str
    caught_by: tuple[str, ...]  # scenarios expected to fail on it


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("ack_before_commit", "consumer",
                "acknowledges each message on receipt, before its transaction commits: "
                "a crash loses what was acknowledged but not yet stored",
                ("consumer_crash",)),
        Variant("mark_sent_before_confirm", "publisher",
                "the relay marks outbox rows sent before the broker confirmed them: a batch "
                "lost on the way is never published again",
                ("network_faults_relay",)),
        Variant("dual_write", "publisher",
                "publishes from the request after the database commit, without the outbox: "
                "events written while the broker is unreachable are lost",
                ("broker_outage_stop", "broker_outage_kill")),
        Variant("no_dedupe", "consumer",
                "skips the inbox check: a redelivered event is processed again",
                ("duplicates",)),
        Variant("no_version_check", "consumer",
                "applies whatever arrives last: an older version overwrites a newer one",
                ("reordering",)),
        Variant("poison_requeue_loop", "consumer",
                "hands unprocessable messages back to the broker instead of dead-lettering "
                "them: they come back forever and block their batch",
                ("poison_payloads",)),
        Variant("truncate_names", "consumer",
                "cuts product names to 8 characters in every write to the replica",
                ("steady_state",)),
        Variant("log_lies_dedupe", "consumer",
                "applies a redelivered stock delta again, yet logs the delivery as "
                "deduplicated: only the harness's own observers can tell",
                ("duplicates",)),
        Variant("log_lies_stale", "consumer",
                "drops every 25th event (by sequence) unapplied, yet logs it as stale: only "
                "the harness's own observers can tell",
                ("steady_state",)),
        Variant("skip_catch_up", "consumer",
                "a full resync replaces the replica with the export and stops there: events "
                "after the export's high-water mark are left to the queue, which lost them",
                ("full_resync_under_load",)),
    )
}


def resolve_variant(name: str) -> Variant | None:
    if name in ("", "none"):
        return None
    if name not in VARIANTS:
        raise ConfigError("--variant", f"unknown variant {name!r}",
                          f"use one of: none, {', '.join(sorted(VARIANTS))}")
    return VARIANTS[name]
