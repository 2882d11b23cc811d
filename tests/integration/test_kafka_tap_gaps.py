"""The broker tap on a real Tansu broker (S3 storage) when the log skips offsets: a hole
the broker left (offsets that never held a record) is told apart from records lost before
the tap read them by asking the broker, never by ignoring the skip."""

from __future__ import annotations

import json

import pytest

from harness.brokers.kafka import KafkaAdapter
from harness.contract import envelope as env
from harness.contract import naming
from harness.runtime.processes import ProcessRuntime
from harness.runtime.tansu_node import CLUSTER_ID, WATERMARK, TansuNode

pytestmark = [pytest.mark.integration]

TOPIC = naming.EVENTS_TOPIC
HOLE = 10


def events(first: int, count: int) -> list[bytes]:
    # One aggregate: every event on one partition, in order.
    return [env.Envelope(f"e{n}", env.STOCK_ADJUSTED, "7", n, n, 1.0, 1,
                         {"delta": 1, "stock": n}).encode()
            for n in range(first, first + count)]


def leave_a_hole(node: TansuNode, count: int) -> None:
    """Move the log end of every partition holding records on by `count` without storing
    a record there, as a broker killed between reserving a batch's offsets and storing the
    batch does."""
    assert node.s3 is not None
    prefix = f"clusters/{CLUSTER_ID}/topics/{TOPIC}/partitions/"
    for key in node.s3.keys(prefix):
        if key.endswith(WATERMARK):
            body, etag = node.s3.read(key)
            state = json.loads(body)
            if int(state.get("high") or 0) > 0:
                state["high"] = int(state["high"]) + count
                assert node.s3.replace(key, json.dumps(state).encode(), etag)


def test_a_hole_the_broker_left_is_named_and_keeps_the_tap_complete(
        runtime: ProcessRuntime) -> None:
    node = runtime.kafka("kafka", storage="s3")
    node.start()
    adapter = KafkaAdapter(node.bootstrap)
    tap = adapter.open_tap("hole")
    tap.start()
    try:
        before, after = events(1, 20), events(21, 20)
        adapter.publish_raw("consumer", before)
        assert tap.drain(20.0)
        leave_a_hole(node, HOLE)
        adapter.publish_raw("consumer", after)
        assert tap.drain(25.0)
        records, status = tap.records(), tap.status()
    finally:
        tap.stop()
        adapter.close()
    offsets = sorted(r["offset"] for r in records)
    assert offsets == [*range(20), *range(20 + HOLE, 40 + HOLE)]
    assert {r["event_id"] for r in records} == {env.decode(b).event_id
                                                for b in before + after}
    assert status["complete"] and not status["subscription_lost"], status
    [gap] = status["offset_gaps"]
    assert f"offsets 20..{19 + HOLE}: {HOLE} offsets hold no record" in gap
