"""What the harness's own Kafka clients share: their settings, and how they read where a
partition's log ends.

Every client connects straight to the broker's bootstrap address; it then follows the
address the broker advertises (see harness/runtime/tansu_node.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from harness.errors import BrokerError

# librdkafka logs each refused connection, expected while a fault holds the broker down;
# routed to a logger of ours, which prints nothing unless the application configures it.
CLIENT_LOG = logging.getLogger("harness.kafka")
CLIENT_LOG.addHandler(logging.NullHandler())

# With librdkafka's defaults a group join can take minutes against Tansu and a reconnect
# backs off to 10 s; either would hide every recovery a scenario measures.
GROUP_TIMEOUTS: Mapping[str, int] = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                                     "max.poll.interval.ms": 10000}
_RECONNECT: Mapping[str, int] = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000}
# Group the log-end probe names (it never joins or commits).
PROBE_GROUP = "harness-probe"
# An offset beyond any real log: a fetch there carries no records, only the partition's
# log start and end (its high watermark).
BEYOND_ANY_LOG = 1 << 62
PROBE_POLL_S = 0.02
# How long the broker may hold a fetch that finds nothing new. Tansu on S3 storage answers
# every fetch with object-store requests, and an idle reader re-fetches as soon as it is
# answered: at 10 ms, each reader of a 4-partition topic keeps the S3 server so busy that
# records wait seconds to be read. Tansu holds a fetch for this long even when records
# arrive meanwhile, so it is also about the floor of a reader's lag on it.
FETCH_WAIT_MS = 50
# How long the broker may hold the fetches of a reader that must keep up with a load or
# catch up after falling behind (the tap, the benchmarks' raw reader). Tansu on S3 returns
# only what it read from the store within the wait: a reader behind by older batches gets
# ~9 records/s at 50 ms (one reader, batches of 4 records), 200/s at 200 ms, 360/s at
# 500 ms; the reference consumer uses 300 ms too.
READER_FETCH_WAIT_MS = 300


def client_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "logger": CLIENT_LOG, **_RECONNECT, **extra}


def consumer_config(bootstrap: str, group: str, **extra: Any) -> dict[str, Any]:
    return client_config(bootstrap, **{"group.id": group, "client.id": group,
                                       "fetch.wait.max.ms": FETCH_WAIT_MS, **GROUP_TIMEOUTS,
                                       **extra})


def producer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """Idempotent, waiting for every in-sync replica: a retried send neither duplicates nor
    reorders, and a delivery report means the record is stored."""
    return client_config(bootstrap, **{"enable.idempotence": True, "acks": "all",
                                       "linger.ms": 0, **extra})


@dataclass(frozen=True)
class LogBounds:
    """Where one partition's log starts and ends (the offset the next record will get)."""

    start: int
    end: int


def log_bounds(bootstrap: str, topic: str, partitions: Sequence[int],
               timeout_s: float = 5.0) -> dict[int, LogBounds]:
    """Each partition's log bounds, as the broker states them in fetch responses.

    Not from a ListOffsets request: Tansu 0.6 answers "latest" with the base offset of the
    newest stored batch plus one, short of the true end by every other record of that
    batch (and, on S3, it picks that batch by a modification time of one-second
    resolution). Its fetch responses carry the true high watermark, so a throwaway
    consumer fetches from beyond any log: no records come back, only the bounds.
    """
    if not partitions:
        return {}
    began = time.monotonic()
    probe = Consumer(consumer_config(bootstrap, PROBE_GROUP, **{
        "enable.auto.commit": False, "auto.offset.reset": "error"}))
    try:
        probe.assign([TopicPartition(topic, p, BEYOND_ANY_LOG) for p in partitions])
        found: dict[int, LogBounds] = {}
        while True:
            probe.consume(num_messages=100, timeout=PROBE_POLL_S)
            for partition in partitions:
                if partition not in found:
                    low, high = probe.get_watermark_offsets(
                        TopicPartition(topic, partition), cached=True)
                    if high >= 0:
                        found[partition] = LogBounds(max(low, 0), high)
            if len(found) == len(partitions):
                return found
            if time.monotonic() - began > timeout_s:
                missing = sorted(set(partitions) - set(found))
                raise BrokerError(f"no fetch answer for {topic} partitions {missing} from "
                                  f"{bootstrap} within {timeout_s:.0f}s")
    except KafkaException as exc:
        raise BrokerError(f"cannot read the log bounds of {topic} at {bootstrap}: "
                          f"{exc}") from exc
    finally:
        probe.close()
