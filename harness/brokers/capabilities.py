"""What a broker adapter can do to a broker, named, so that a fault action or a scenario
can say what it needs and a broker that lacks it is reported as not applicable instead of
failing halfway (or, worse, passing without the fault).

Every adapter can observe its consumers' backlog and run the harness's tap: those are the
floor, not capabilities.
"""

from __future__ import annotations

from collections.abc import Iterable

# Destroy what waits for a consumer (purge a queue, delete a topic).
LOSE_DATA = "lose_data"
# Deliver exact bytes to one consumer's subscription only.
INJECT_RAW = "inject_raw"
# Hold a consumer's events back at the broker and hand them over later, in a chosen order.
HOLD_AND_RELEASE = "hold_and_release"
# A dead-letter destination per consumer that the broker can count.
DEAD_LETTER = "dead_letter"

ALL = frozenset({LOSE_DATA, INJECT_RAW, HOLD_AND_RELEASE, DEAD_LETTER})

DESCRIPTIONS = {
    LOSE_DATA: "destroy what waits for a consumer",
    INJECT_RAW: "deliver raw bytes to one consumer only",
    HOLD_AND_RELEASE: "hold a consumer's events and release them in another order",
    DEAD_LETTER: "a countable dead-letter destination per consumer",
}


def missing(needed: Iterable[str], offered: Iterable[str]) -> list[str]:
    """The needed capabilities the broker does not offer, sorted."""
    return sorted(set(needed) - set(offered))


def describe(names: Iterable[str]) -> str:
    return "; ".join(f"{n} ({DESCRIPTIONS.get(n, '?')})" for n in sorted(names))
