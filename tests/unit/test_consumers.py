"""harness.consumers: how consumers, their instances and their links are named."""

from __future__ import annotations

import pytest

from harness import consumers


def test_keys_of_consumers_and_instances() -> None:
    assert [consumers.consumer_key(i) for i in range(4)] == [
        "consumer", "consumer2", "consumer3", "consumer4"]
    assert [consumers.instance_key("consumer2", n) for n in range(3)] == [
        "consumer2", "consumer2.i2", "consumer2.i3"]
    assert consumers.instance_key("consumer", 1) == "consumer.i2"
    assert (consumers.broker_link("consumer12"), consumers.publisher_link("consumer")) == (
        "consumer12_broker", "consumer_publisher")
    assert consumers.db_link("consumer2") == "consumer2_db"


@pytest.mark.parametrize(("target", "owner", "role"), [
    ("consumer", "consumer", "consumer"),
    ("consumer2", "consumer2", "consumer"),
    ("consumer.i2", "consumer", "consumer"),
    ("consumer12.i10", "consumer12", "consumer"),
    ("consumer_broker", "consumer", "consumer_broker"),
    ("consumer3_publisher", "consumer3", "consumer_publisher"),
    ("consumer_db", "consumer", "consumer_db"),
    ("consumer4_db", "consumer4", "consumer_db"),
    ("broker", None, "broker"),
    ("publisher", None, "publisher"),
    ("relay_broker", None, "relay_broker"),
    # Never generated: the first consumer is "consumer", instance 1 is the key itself.
    ("consumer1", None, "consumer1"),
    ("consumer.i1", None, "consumer.i1"),
    ("consumer2.i", None, "consumer2.i"),
    ("consumer02", None, "consumer02"),
])
def test_owner_and_role_of_a_target(target: str, owner: str | None, role: str) -> None:
    assert consumers.owner(target) == owner
    assert consumers.role(target) == role
