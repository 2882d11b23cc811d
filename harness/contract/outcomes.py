"""What a consumer records for every delivery, and the reasons it dead-letters with.

A consumer under test logs one outcome per delivery (`GET /deliveries`). The harness
cross-checks that log against its own observation; it never takes it as the only witness.
"""

from __future__ import annotations

APPLIED = "applied"  # the event changed the replica
DEDUPLICATED = "deduplicated"  # its event_id was processed before: dropped
STALE = "stale"  # the replica already held this version or a newer one: skipped
RESYNCED = "resynced"  # the consumer fetched the product's state instead of applying
DEAD_LETTERED = "dead_lettered"  # unprocessable: stored with a reason, not applied

OUTCOMES = (APPLIED, DEDUPLICATED, STALE, RESYNCED, DEAD_LETTERED)
KNOWN_OUTCOMES = frozenset(OUTCOMES)
# The event was handled (its effect is in the replica, or a newer state covers it).
PROCESSED = (APPLIED, STALE, RESYNCED, DEDUPLICATED)
# Handled by something newer than the event itself.
SUPERSEDED = (STALE, RESYNCED)
# First-time processing (a deduplicated delivery is a repeat by definition).
FIRST_PROCESSING = (APPLIED, STALE, RESYNCED)

# Dead-letter reason codes: every reason a consumer gives starts with, or contains, one of
# these, so a checker can match dead letters to the poison that was injected.
REASON_MALFORMED_JSON = "malformed JSON"
REASON_NOT_AN_OBJECT = "expected an object"
REASON_UNKNOWN_TYPE = "unknown type"
REASON_MISSING_FIELD = "missing field"
REASON_WRONG_TYPE = "wrong type for"
REASON_UNKNOWN_SCHEMA = "unknown schema_version"
REASON_OVERSIZED = "oversized"
REASON_BAD_AGGREGATE_ID = "wrong value for aggregate_id"
