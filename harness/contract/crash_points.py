"""Names of the crash points a service under test offers: places where, when armed over
`POST /admin/crash-points`, it kills itself abruptly (SIGKILL) at the worst moment."""

from __future__ import annotations

RELAY_AFTER_COMMIT_BEFORE_PUBLISH = "relay.after_commit_before_publish"
RELAY_AFTER_PUBLISH_BEFORE_MARK_SENT = "relay.after_publish_before_mark_sent"
CONSUMER_BEFORE_COMMIT = "consumer.before_commit"
CONSUMER_AFTER_APPLY_BEFORE_ACK = "consumer.after_apply_before_ack"

POINTS = frozenset({
    RELAY_AFTER_COMMIT_BEFORE_PUBLISH,
    RELAY_AFTER_PUBLISH_BEFORE_MARK_SENT,
    CONSUMER_BEFORE_COMMIT,
    CONSUMER_AFTER_APPLY_BEFORE_ACK,
})


def service_of(point: str) -> str:
    """The service that offers a point: "publisher" for relay points, else "consumer"."""
    return "publisher" if point.startswith("relay.") else "consumer"
