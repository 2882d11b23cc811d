"""Unit tests for harness.workload.generator: a seeded, reproducible sequence of writes."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.workload import Operation, WorkloadGenerator, WorkloadSpec
from harness.workload.generator import CATEGORIES

PRODUCT_FIELDS = {"name", "category", "price", "stock", "restricted_note"}


class FakePublisher:
    """Answers like the publisher would: 201 with increasing ids, 200 otherwise."""

    def __init__(self) -> None:
        self.ids = itertools.count(1)
        self.live: set[int] = set()

    def answer(self, op: Operation) -> tuple[int, dict[str, Any]]:
        if op.kind == "create":
            pid = next(self.ids)
            self.live.add(pid)
            return 201, {"id": pid, **op.body}
        assert op.product_id is not None
        if op.product_id not in self.live:
            return 404, {}
        if op.kind == "delete":
            self.live.discard(op.product_id)
        return 200, {"id": op.product_id}


def drive(spec: WorkloadSpec, seed: int, count: int) -> tuple[list[Operation],
                                                               WorkloadGenerator]:
    generator = WorkloadGenerator(spec, random.Random(seed))
    publisher = FakePublisher()
    ops = []
    for _ in range(count):
        op = generator.next_operation()
        generator.observe(op, *publisher.answer(op))
        ops.append(op)
    return ops, generator


SPEC = WorkloadSpec(rate_per_s=100, duration_s=2, initial_products=10)


def test_same_seed_gives_the_same_operations() -> None:
    first, gen1 = drive(SPEC, seed=7, count=300)
    second, gen2 = drive(SPEC, seed=7, count=300)
    assert first == second
    assert gen1.live_ids == gen2.live_ids


def test_different_seeds_give_different_operations() -> None:
    first, _ = drive(SPEC, seed=7, count=100)
    second, _ = drive(SPEC, seed=8, count=100)
    assert first != second


def test_first_initial_products_ops_are_creates() -> None:
    ops, _ = drive(SPEC, seed=3, count=200)
    assert [op.kind for op in ops[:10]] == ["create"] * 10
    assert all(op.product_id is None for op in ops[:10])
    assert {op.kind for op in ops[10:]} == {"create", "update", "stock", "delete"}
    assert [op.index for op in ops] == list(range(200))


def test_operation_bodies_have_the_right_shape() -> None:
    ops, _ = drive(SPEC, seed=11, count=300)
    for op in ops:
        if op.kind == "create":
            assert set(op.body) == PRODUCT_FIELDS
            assert op.body["category"] in CATEGORIES
            assert 100 <= op.body["price"] < 100_000
            assert 0 <= op.body["stock"] < 500
        elif op.kind == "update":
            assert 1 <= len(op.body) <= 3
            assert set(op.body) <= {"name", "category", "price", "restricted_note"}
        elif op.kind == "stock":
            assert set(op.body) == {"delta"}
            assert op.body["delta"] != 0
        else:
            assert op.body == {}


def test_writes_only_target_live_products() -> None:
    generator = WorkloadGenerator(SPEC, random.Random(5))
    publisher = FakePublisher()
    for _ in range(500):
        op = generator.next_operation()
        if op.product_id is not None:
            assert op.product_id in publisher.live
        generator.observe(op, *publisher.answer(op))
        assert sorted(generator.live_ids) == sorted(publisher.live)


def test_creates_until_a_product_exists() -> None:
    spec = WorkloadSpec(initial_products=0, mix=(("create", 0.1), ("stock", 0.9)))
    generator = WorkloadGenerator(spec, random.Random(1))
    for _ in range(3):
        op = generator.next_operation()
        assert op.kind == "create"
        generator.observe(op, 503, {})  # failed creates leave nothing to target
    generator.observe(generator.next_operation(), 201, {"id": 42})
    later = [generator.next_operation() for _ in range(50)]
    assert {op.product_id for op in later if op.kind != "create"} == {42}


def test_observe_forgets_gone_products() -> None:
    generator = WorkloadGenerator(SPEC, random.Random(1), live_ids=[1, 2, 3])
    generator.observe(Operation(0, "update", 2, {"name": "x"}), 404, {})
    generator.observe(Operation(1, "stock", 3, {"delta": 1}), 410, {})
    generator.observe(Operation(2, "update", 1, {"name": "x"}), 200, {})
    generator.observe(Operation(3, "stock", 1, {"delta": 1}), 500, {})
    assert generator.live_ids == [1]
    # A delete's answer teaches nothing more: the generator dropped the id when it issued
    # the delete (test_a_write_never_targets_a_product_whose_delete_was_issued).
    generator.observe(Operation(4, "delete", 1, {}), 200, {})
    assert generator.live_ids == [1]


def test_observe_ignores_failed_creates_and_learns_ids() -> None:
    generator = WorkloadGenerator(SPEC, random.Random(1))
    generator.observe(Operation(0, "create", None, {}), 500, {})
    generator.observe(Operation(1, "create", None, {}), 201, {"id": "9"})
    assert generator.live_ids == [9]


@given(seed=st.integers(min_value=0, max_value=2**32), initial=st.integers(1, 12))
def test_deletes_never_drop_live_products_below_the_floor(seed: int, initial: int) -> None:
    spec = WorkloadSpec(initial_products=initial,
                        mix=(("create", 0.05), ("delete", 0.9), ("update", 0.05)))
    generator = WorkloadGenerator(spec, random.Random(seed))
    publisher = FakePublisher()
    deletes = 0
    for _ in range(initial + 60):
        before = len(generator.live_ids)
        op = generator.next_operation()
        if op.kind == "delete":
            deletes += 1
            assert before > 5
        generator.observe(op, *publisher.answer(op))
        if op.kind == "delete":
            assert len(generator.live_ids) >= 5
    if initial > 5:
        assert deletes > 0


def test_floor_turns_a_delete_into_a_stock_bump() -> None:
    spec = WorkloadSpec(initial_products=1, mix=(("delete", 1.0),))
    ops, generator = drive(spec, seed=1, count=20)
    assert [op.kind for op in ops[1:]] == ["stock"] * 19
    assert all(op.body == {"delta": 1} for op in ops[1:])
    assert generator.live_ids == [1]


def test_max_ops() -> None:
    assert WorkloadSpec(rate_per_s=200, duration_s=8, initial_products=50).max_ops == 1650
    assert WorkloadSpec(rate_per_s=2.5, duration_s=3, initial_products=1).max_ops == 8


@pytest.mark.parametrize(
    ("kwargs", "field", "needle"),
    [
        ({"rate_per_s": 0}, "workload.rate_per_s", "must be > 0, got 0"),
        ({"rate_per_s": -5}, "workload.rate_per_s", "must be > 0, got -5"),
        ({"duration_s": 0}, "workload.duration_s", "must be > 0, got 0"),
        ({"mix": (("create", 1.0), ("explode", 1.0))}, "workload.mix", "['explode']"),
        ({"initial_products": 0, "mix": (("update", 1.0),)}, "workload.initial_products",
         "no product would ever exist"),
    ],
)
def test_spec_validation_names_the_field(kwargs: dict[str, Any], field: str,
                                         needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        WorkloadSpec(**kwargs)
    assert info.value.field == field
    assert needle in info.value.problem
    assert str(info.value).startswith(f"{field}: ")
    assert info.value.fix


@pytest.mark.parametrize("mix", [(), (("update", 0.0), ("stock", 0.0))], ids=["empty", "zero"])
def test_mix_without_positive_weight_is_rejected(mix: tuple[tuple[str, float], ...]) -> None:
    with pytest.raises(ConfigError) as info:
        WorkloadSpec(initial_products=1, mix=mix)
    assert info.value.field == "workload.mix"


def test_a_write_never_targets_a_product_whose_delete_was_issued() -> None:
    spec = WorkloadSpec(rate_per_s=100, duration_s=2, initial_products=20,
                        mix=(("update", 0.5), ("delete", 0.5)))
    generator = WorkloadGenerator(spec, random.Random(5))
    deleted: set[int] = set()
    for number in range(spec.max_ops):
        op = generator.next_operation()
        if op.kind == "create":  # the answer to a create is learnt at once here
            generator.observe(op, 201, {"id": number + 1})
        assert op.product_id not in deleted  # no answer to any delete was passed on
        if op.kind == "delete" and op.product_id is not None:
            deleted.add(op.product_id)
    assert len(deleted) > 5


def test_a_delete_never_targets_a_product_of_a_write_possibly_in_flight() -> None:
    spec = WorkloadSpec(rate_per_s=100, duration_s=5, initial_products=30, concurrency=8,
                        mix=(("update", 0.5), ("delete", 0.5)))
    generator = WorkloadGenerator(spec, random.Random(2))
    ops = []
    for number in range(spec.max_ops):
        op = generator.next_operation()
        if op.kind == "create":
            generator.observe(op, 201, {"id": number + 1})
        ops.append(op)
    deletes = [op for op in ops if op.kind == "delete"]
    assert len(deletes) > 20
    for op in deletes:
        # The 7 writes before it may be unanswered when it goes out (8 in flight).
        assert op.product_id not in {o.product_id for o in ops[op.index - 7:op.index]}

