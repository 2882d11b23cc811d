"""Message faults and the broker operations under them, on a private RabbitMQ node.

One node serves the whole module; every test uses its own consumer names.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from harness.brokers.rabbitmq import RabbitMQAdapter, held_queue_name
from harness.contract import envelope as env
from harness.errors import BrokerError, ConfigError
from harness.faults.messages import (
    POISON_KINDS,
    POISON_REASONS,
    BrokerDataLoss,
    DuplicateDelivery,
    PoisonMessages,
    Reorder,
    poison_body,
)
from harness.runtime.processes import ProcessRuntime
from reference_services.common import rabbitmq as topology
from tests.integration.conftest import processes_started_under

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def amqp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("message-faults")
    runtime = ProcessRuntime(root)
    try:
        node = runtime.rabbitmq("broker")
        node.start()
        yield node.amqp_url
    finally:
        runtime.close()
    leaked = processes_started_under(root)
    assert not leaked, f"processes left running after the module: {leaked}"


@pytest.fixture
def adapter(amqp_url: str) -> Iterator[RabbitMQAdapter]:
    adapter = RabbitMQAdapter(amqp_url)
    try:
        yield adapter
    finally:
        adapter.close()


@pytest.fixture
def connection(amqp_url: str) -> Iterator[pika.BlockingConnection]:
    conn = pika.BlockingConnection(topology.connection_parameters(amqp_url))
    try:
        yield conn
    finally:
        if conn.is_open:
            conn.close()


def consumers(connection: pika.BlockingConnection, *prefixes: str) -> list[str]:
    """Fresh consumer names with their queues declared as the consumer itself does."""
    channel = connection.channel()
    names = [f"{p}-{uuid.uuid4().hex[:8]}" for p in prefixes]
    for name in names:
        topology.declare_consumer_queues(channel, name)
    channel.close()
    return names


def drain(connection: pika.BlockingConnection, queue: str, limit: int = 5000) -> list[bytes]:
    channel = connection.channel()
    bodies: list[bytes] = []
    for _ in range(limit):
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        bodies.append(body)
    channel.close()
    return bodies


def publish_to_exchange(connection: pika.BlockingConnection, bodies: list[bytes]) -> None:
    """As the publisher does, but mandatory: an unroutable event raises UnroutableError."""
    channel = connection.channel()
    channel.confirm_delivery()
    for i, body in enumerate(bodies):
        channel.basic_publish(topology.EXCHANGE, topology.routing_key(str(i % 7 + 1)), body,
                              pika.BasicProperties(delivery_mode=2), mandatory=True)
    channel.close()


def queue_exists(connection: pika.BlockingConnection, queue: str) -> bool:
    channel = connection.channel()
    try:
        channel.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404
        return False
    channel.close()
    return True


def event_body(product_id: int, version: int) -> bytes:
    return env.Envelope(env.new_event_id(), env.PRODUCT_UPSERTED, str(product_id), version,
                        version, time.time(), env.SCHEMA_VERSION,
                        {"name": f"p{product_id}", "category": "c", "price": 100 * version,
                         "stock": version, "restricted_note": ""}).encode()


def test_publish_raw_reaches_only_the_named_consumer(
        adapter: RabbitMQAdapter, connection: pika.BlockingConnection) -> None:
    target, other = consumers(connection, "target", "other")
    bodies = [b"\x00not json", b'{"a":1}', event_body(1, 1)]
    adapter.publish_raw(target, bodies)
    assert adapter.consumer_queue(target).ready == 3
    assert adapter.consumer_queue(other).ready == 0
    assert drain(connection, topology.queue_name(target)) == bodies
    assert adapter.dead_letter_depth(target) == 0
    with pytest.raises(BrokerError, match="nobody"):
        adapter.publish_raw(f"nobody-{uuid.uuid4().hex[:8]}", [b"x"])
    # The adapter recovers from the failed call.
    adapter.publish_raw(other, [b"y"])
    assert adapter.consumer_queue(other).ready == 1


def test_divert_then_release_reversed(adapter: RabbitMQAdapter,
                                      connection: pika.BlockingConnection) -> None:
    diverted, bystander = consumers(connection, "diverted", "bystander")
    adapter.publish_raw(diverted, [b"before"])
    adapter.divert(diverted)
    adapter.divert(diverted)  # already diverted: no change
    bodies = [f"m{i}".encode() for i in range(5)]
    publish_to_exchange(connection, bodies)  # raises if anything were unroutable
    assert adapter.consumer_queue(diverted).ready == 1
    assert adapter.consumer_queue(bystander).ready == 5
    assert queue_exists(connection, held_queue_name(diverted))

    assert adapter.release(diverted, "reversed") == 5
    assert drain(connection, topology.queue_name(diverted)) == [b"before", *bodies[::-1]]
    assert drain(connection, topology.queue_name(bystander)) == bodies
    assert not queue_exists(connection, held_queue_name(diverted))
    assert adapter.release(diverted, "reversed") == 0
    # Bound again: new events reach the consumer directly.
    publish_to_exchange(connection, [b"after"])
    assert drain(connection, topology.queue_name(diverted)) == [b"after"]


def test_release_shuffled_needs_rng_and_permutes(adapter: RabbitMQAdapter,
                                                 connection: pika.BlockingConnection) -> None:
    (name,) = consumers(connection, "shuffled")
    with pytest.raises(ValueError, match="rng"):
        adapter.release(name, "shuffled")
    adapter.divert(name)
    bodies = [f"s{i}".encode() for i in range(8)]
    publish_to_exchange(connection, bodies)
    assert adapter.release(name, "shuffled", random.Random(3)) == 8
    expected = list(bodies)
    random.Random(3).shuffle(expected)
    assert drain(connection, topology.queue_name(name)) == expected


def test_nothing_lost_or_unroutable_across_divert_and_release(
        adapter: RabbitMQAdapter, connection: pika.BlockingConnection, amqp_url: str) -> None:
    (name,) = consumers(connection, "continuous")
    published: list[bytes] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def publish() -> None:
        conn = pika.BlockingConnection(topology.connection_parameters(amqp_url))
        try:
            channel = conn.channel()
            channel.confirm_delivery()
            deadline = time.monotonic() + 10
            for i in range(2000):
                if stop.is_set() or time.monotonic() > deadline:
                    break
                body = f"c{i}".encode()
                channel.basic_publish(topology.EXCHANGE, topology.routing_key(str(i)), body,
                                      pika.BasicProperties(delivery_mode=2), mandatory=True)
                published.append(body)
        except (pika.exceptions.AMQPError, OSError) as exc:  # UnroutableError among them
            errors.append(exc)
        finally:
            conn.close()

    def wait_for_more(count: int) -> None:
        target = len(published) + count
        deadline = time.monotonic() + 5
        while len(published) < target and time.monotonic() < deadline and not errors:
            time.sleep(0.005)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        wait_for_more(20)
        adapter.divert(name)
        wait_for_more(20)
        moved = adapter.release(name, "fifo")
        wait_for_more(20)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert not errors, errors
    assert moved > 0
    received = drain(connection, topology.queue_name(name))
    # At-least-once: a message published at the instant of a switch may come twice.
    assert set(received) == set(published)
    assert len(published) >= 60


def test_purge_and_delete_report_what_they_destroyed(
        adapter: RabbitMQAdapter, connection: pika.BlockingConnection) -> None:
    purged, deleted = consumers(connection, "purged", "deleted")
    adapter.publish_raw(purged, [b"1", b"2", b"3", b"4"])
    adapter.publish_raw(deleted, [b"1", b"2", b"3"])

    purge = BrokerDataLoss(adapter, purged, "purge")
    purge.inject()
    purge.heal()
    purge.heal()
    assert purge.destroyed == 4 and purge.evidence().verified
    assert adapter.consumer_queue(purged).ready == 0

    delete = BrokerDataLoss(adapter, deleted, "delete")
    delete.inject()
    delete.heal()
    delete.heal()
    assert delete.destroyed == 3 and delete.evidence().verified
    assert "3 messages destroyed" in delete.evidence().description
    assert not queue_exists(connection, topology.queue_name(deleted))
    with pytest.raises(BrokerError):
        adapter.consumer_queue(deleted)
    assert adapter.delete_queue(deleted) == 0

    empty = BrokerDataLoss(adapter, purged, "purge")
    empty.inject()
    assert not empty.evidence().verified  # nothing was there to lose
    with pytest.raises(ConfigError):
        BrokerDataLoss(adapter, purged, "shred")  # type: ignore[arg-type]


def test_poison_bodies_are_rejected_with_the_expected_reasons() -> None:
    rng = random.Random(11)
    seen: set[bytes] = set()
    for kind in POISON_KINDS:
        for _ in range(5):
            body = poison_body(kind, rng)
            assert body not in seen
            seen.add(body)
            with pytest.raises(env.EnvelopeError) as caught:
                env.decode(body)
            assert POISON_REASONS[kind] in caught.value.reason, (kind, caught.value.reason)
    with pytest.raises(ConfigError):
        poison_body("cursed", rng)


def test_poison_messages_fault(adapter: RabbitMQAdapter,
                               connection: pika.BlockingConnection) -> None:
    (name,) = consumers(connection, "poisoned")
    kinds = [*POISON_KINDS, "malformed_json", "unknown_type"]
    fault = PoisonMessages(adapter, name, kinds, random.Random(5))
    assert fault.expected_reasons == {k: POISON_REASONS[k] for k in POISON_KINDS}
    fault.inject()
    fault.heal()
    fault.heal()
    assert fault.injected == {**dict.fromkeys(POISON_KINDS, 1),
                              "malformed_json": 2, "unknown_type": 2}
    assert len(fault.by_digest) == len(kinds)
    assert fault.evidence().verified
    received = drain(connection, topology.queue_name(name))
    assert len(received) == len(kinds)
    for body in received:
        with pytest.raises(env.EnvelopeError):
            env.decode(body)
    with pytest.raises(ConfigError):
        PoisonMessages(adapter, name, ["cursed"], random.Random(5))


def test_duplicate_delivery_fault(adapter: RabbitMQAdapter,
                                  connection: pika.BlockingConnection) -> None:
    target, other = consumers(connection, "dup", "nodup")
    originals = [event_body(1, 1), event_body(2, 1), event_body(1, 2)]
    fault = DuplicateDelivery(adapter, target, lambda: list(originals), copies=2)
    fault.inject()
    fault.heal()
    fault.heal()
    assert fault.published == 6 and fault.evidence().verified
    assert drain(connection, topology.queue_name(target)) == originals * 2
    assert adapter.consumer_queue(other).ready == 0

    nothing = DuplicateDelivery(adapter, target, list, copies=1)
    nothing.inject()
    assert not nothing.evidence().verified
    with pytest.raises(ConfigError):
        DuplicateDelivery(adapter, target, list, copies=0)


def test_reorder_fault(adapter: RabbitMQAdapter, connection: pika.BlockingConnection) -> None:
    (name,) = consumers(connection, "reorder")
    fault = Reorder(adapter, name, random.Random(1))
    fault.heal()  # before inject: harmless
    fault.inject()
    versions = [event_body(9, v) for v in (1, 2, 3)]
    publish_to_exchange(connection, versions)
    fault.heal()
    fault.heal()
    assert fault.released == 3 and fault.evidence().verified
    assert drain(connection, topology.queue_name(name)) == versions[::-1]

    quiet = Reorder(adapter, name, random.Random(1))
    quiet.inject()
    quiet.heal()
    assert not quiet.evidence().verified  # nothing was held
