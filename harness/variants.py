"""Known-buggy variants of the reference services (docs/architecture.md, "Bug variants").

Each switches one bug into one service, so a scenario can prove its checkers catch it.
A bug belongs to a broker's client code or to code both brokers share, so each variant
names the brokers it exists on and, per broker, the scenarios that must catch it there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.errors import ConfigError

RABBITMQ = "rabbitmq"
KAFKA = "kafka"
SQLITE = "sqlite"
POSTGRES = "postgres"
DBS = (SQLITE, POSTGRES)


@dataclass(frozen=True)
class Variant:
    name: str
    service: str  # "publisher" or "consumer"
    bug: str
    # Broker -> the scenarios expected to fail on the bug there. The keys are the brokers
    # the bug exists on (the service refuses it on any other); an empty tuple: it exists
    # there, but no scenario that runs there catches it (yet).
    caught_on: Mapping[str, tuple[str, ...]] = field(hash=False)
    # The services' databases the bug can show on: one that needs concurrent transactions
    # committing out of order cannot exist on SQLite, which runs one writer at a time.
    dbs: tuple[str, ...] = DBS

    @property
    def brokers(self) -> tuple[str, ...]:
        """The brokers the bug exists on."""
        return tuple(self.caught_on)

    def caught_by(self, broker: str) -> tuple[str, ...]:
        """The scenarios expected to fail on it on `broker` (none where it does not
        exist)."""
        return self.caught_on.get(broker, ())


def _both(rabbitmq: tuple[str, ...], kafka: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """A bug in code both brokers run, caught by these scenarios on each."""
    return {RABBITMQ: rabbitmq, KAFKA: kafka}


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("ack_before_commit", "consumer",
                "acknowledges each message on receipt, before its transaction commits: "
                "a crash, or a transaction that fails, loses what was acknowledged but not "
                "yet stored",
                # Kafka has no per-message acknowledgement: its counterpart is
                # autocommit_offsets. network_faults_consumer_db (PostgreSQL): a batch
                # whose transaction fails on the database link was already acknowledged.
                {RABBITMQ: ("consumer_crash", "network_faults_consumer_db")}),
        Variant("autocommit_offsets", "consumer",
                "commits each batch's offsets to Kafka before its database transaction and "
                "resumes from Kafka's committed offsets: a crash in between skips the batch",
                {KAFKA: ("consumer_crash",)}),
        Variant("offset_reset_latest", "consumer",
                "keeps no positions of its own and starts every assignment at the end of "
                "the log: what was published while no instance read a partition is skipped",
                {KAFKA: ("group_rebalance", "consumer_down_long", "offset_reset")}),
        Variant("mark_sent_before_confirm", "publisher",
                "the relay marks outbox rows sent before the broker confirmed them: a batch "
                "lost on the way is never published again",
                _both(("network_faults_relay",), ("broker_outage_kill",))),
        Variant("dual_write", "publisher",
                "publishes from the request after the database commit, without the outbox: "
                "events written while the broker is unreachable are lost",
                _both(("broker_outage_stop", "broker_outage_kill"), ("broker_outage_kill",))),
        Variant("no_dedupe", "consumer",
                "skips the inbox check: a redelivered event is processed again",
                _both(("duplicates",), ("duplicates",))),
        Variant("no_version_check", "consumer",
                "applies whatever arrives last: an older version overwrites a newer one",
                _both(("reordering", "stale_redelivery"), ("stale_redelivery",))),
        Variant("poison_requeue_loop", "consumer",
                "hands unprocessable messages back to the broker instead of dead-lettering "
                "them: they come back forever and block their batch",
                _both(("poison_payloads",), ("poison_payloads",))),
        Variant("truncate_names", "consumer",
                "cuts product names to 8 characters in every write to the replica",
                _both(("steady_state",), ("steady_state",))),
        Variant("log_lies_dedupe", "consumer",
                "applies a redelivered stock delta again, yet logs the delivery as "
                "deduplicated: only the harness's own observers can tell",
                _both(("duplicates",), ("duplicates",))),
        Variant("log_lies_stale", "consumer",
                "drops every 25th event (by sequence) unapplied, yet logs it as stale: only "
                "the harness's own observers can tell",
                _both(("steady_state",), ("steady_state",))),
        Variant("skip_catch_up", "consumer",
                "a full resync replaces the replica with the export and stops there: events "
                "after the export's high-water mark are left to the queue, which lost them",
                _both(("full_resync_under_load",))),
        Variant("fat_events", "publisher",
                "the relay puts the restricted values an upsert withheld back into the "
                "event: every subscriber's queue gets them, granted or not",
                _both(("authorization",), ("authorization",))),
        Variant("export_leaks", "publisher",
                "GET /export serves every column to every caller, ignoring its grants: a "
                "full resync copies restricted values into an unauthorized replica",
                _both(("authorization",), ("authorization",))),
        Variant("open_admin", "publisher",
                "the admin endpoints take any consumer's credential (authenticated, never "
                "authorized): a subscriber can arm crash points and drop relayed events",
                _both(("unauthorized_calls",), ("unauthorized_calls",))),
        Variant("relay_by_sequence_only", "publisher",
                "the relay reads only outbox rows after the last sequence it sent: a row "
                "whose transaction commits after a higher sequence's is never published",
                _both(("outbox_commit_order",), ("outbox_commit_order",)), dbs=(POSTGRES,)),
    )
}


def resolve_variant(name: str, broker: str | None = None,
                    db: str | None = None) -> Variant | None:
    """The variant called `name` (None for no bug); with `broker` and `db`, only one that
    exists there."""
    if name in ("", "none"):
        return None
    if name not in VARIANTS:
        raise ConfigError("--variant", f"unknown variant {name!r}",
                          f"use one of: none, {', '.join(sorted(VARIANTS))}")
    variant = VARIANTS[name]
    if broker is not None and broker not in variant.brokers:
        here = sorted(v.name for v in VARIANTS.values() if broker in v.brokers)
        raise ConfigError("--variant",
                          f"{name} is a bug of the {variant.service}'s "
                          f"{' and '.join(variant.brokers)} client; it does not exist on "
                          f"{broker}",
                          f"run it with --broker {variant.brokers[0]}, or on {broker} use "
                          f"one of: none, {', '.join(here)}")
    if db is not None and db not in variant.dbs:
        raise ConfigError("--variant",
                          f"{name} is a bug that shows only on the services' "
                          f"{' or '.join(variant.dbs)} database; it cannot show on {db}",
                          f"run it with --db {' or --db '.join(variant.dbs)}")
    return variant
