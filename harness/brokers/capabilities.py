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
# Put exact bytes into the stream a consumer reads. Who else reads them depends on the
# broker (BrokerAdapter.raw_reaches_every_reader): on RabbitMQ that consumer's queue
# alone; on Kafka the shared topic, so every consumer group (the harness's tap included)
# reads them too. Faults record what they injected, so each reader can be held to it.
INJECT_RAW = "inject_raw"
# Hold a consumer's events back at the broker and hand them over later, in a chosen order.
HOLD_AND_RELEASE = "hold_and_release"
# A dead-letter destination per consumer that the broker can count.
DEAD_LETTER = "dead_letter"
# A partitioned log that each consumer reads as a group: its instances share the
# partitions, and it keeps its own position in each (what rebalances and offset resets act
# on). Not a thing the adapter does but what the broker is: a queue has no positions.
CONSUMER_GROUPS = "consumer_groups"

# Every operation an adapter may offer on a consumer's subscription (CONSUMER_GROUPS is
# what a broker is, not an operation, so a queue broker offering all of these lacks it).
ALL = frozenset({LOSE_DATA, INJECT_RAW, HOLD_AND_RELEASE, DEAD_LETTER})

DESCRIPTIONS = {
    LOSE_DATA: "destroy what waits for a consumer",
    INJECT_RAW: "put raw bytes into the stream a consumer reads",
    HOLD_AND_RELEASE: "hold a consumer's events and release them in another order",
    DEAD_LETTER: "a countable dead-letter destination per consumer",
    CONSUMER_GROUPS: "a partitioned log read by consumer groups whose instances share its "
                     "partitions and keep a position in each",
}


def missing(needed: Iterable[str], offered: Iterable[str]) -> list[str]:
    """The needed capabilities the broker does not offer, sorted."""
    return sorted(set(needed) - set(offered))


def describe(names: Iterable[str]) -> str:
    return "; ".join(f"{n} ({DESCRIPTIONS.get(n, '?')})" for n in sorted(names))
