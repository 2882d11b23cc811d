"""How the consumers of a scenario are named: component keys, instance keys and links.

A scenario runs one or more consumers (`Scenario.consumers`), each a subscriber with its
own name (its queue is `<name>.product-events`), database and replica. Each has a
*component key*, which is what fault targets, link names, report folders and check
suffixes use:

- the first consumer is `consumer`, the second `consumer2`, the k-th `consumer<k>`;
- a consumer may run several *instances*: processes sharing its name (so one queue, whose
  messages they compete for, or one consumer group) and its database. The first instance
  has the consumer's key; instance n (n >= 2) is `<key>.i<n>`, e.g. `consumer2.i2`;
- each consumer's links through the fault proxy are `<key>_broker` and `<key>_publisher`,
  shared by its instances, and with the services on PostgreSQL `<key>_db` to its database
  (an SQLite file has no connection to fault).
"""

from __future__ import annotations

import re

FIRST = "consumer"
_PROCESS = re.compile(r"(consumer(?:[2-9]|[1-9]\d+)?)(?:\.i([2-9]|[1-9]\d+))?")
_LINK = re.compile(r"(consumer(?:[2-9]|[1-9]\d+)?)_(broker|publisher|db)")


def consumer_key(index: int) -> str:
    """The component key of the consumer at `index` (0-based) in Scenario.consumers."""
    return FIRST if index == 0 else f"{FIRST}{index + 1}"


def instance_key(key: str, instance: int) -> str:
    """The component key of a consumer's instance `instance` (0-based)."""
    return key if instance == 0 else f"{key}.i{instance + 1}"


def broker_link(key: str) -> str:
    return f"{key}_broker"


def publisher_link(key: str) -> str:
    return f"{key}_publisher"


def db_link(key: str) -> str:
    return f"{key}_db"


def owner(target: str) -> str | None:
    """The key of the consumer a fault target belongs to (its process, one of its
    instances, or one of its links); None for anything else (broker, publisher, relay)."""
    match = _PROCESS.fullmatch(target) or _LINK.fullmatch(target)
    return match.group(1) if match else None


def role(target: str) -> str:
    """What a target is, whichever consumer it belongs to: `consumer` for any consumer's
    process or instance, `consumer_broker` / `consumer_publisher` / `consumer_db` for any
    consumer's links; any other target is its own role."""
    if _PROCESS.fullmatch(target):
        return FIRST
    link = _LINK.fullmatch(target)
    return f"{FIRST}_{link.group(2)}" if link else target

