"""Seeded workload: a deterministic sequence of product writes.

The generator decides each operation from its own Random and its model of the live ids:
an id joins it once the driver passes on the answer to its create, and leaves it as soon
as the generator issues its delete (so the writes sent while that delete is in flight do
not target it) or when an answer says it is gone. A delete never targets a product one
of the last `concurrency - 1` writes targeted: those may still be in flight, and a delete
that overtook one at the publisher would fail it. The same seed against the same answers
gives the same operations.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError

CATEGORIES = ("books", "games", "garden", "kitchen", "music", "tools", "toys")
WORDS = ("red", "blue", "small", "large", "classic", "smart", "eco", "pro", "mini", "max")
# Each in-flight write holds a thread and a connection of the driver.
MAX_CONCURRENCY = 64
# The default cap on writes in flight: far above what a quiet publisher needs at the
# default rate (about 2 at 200/s and 10 ms a write), so the schedule holds through stalls
# of a loaded machine (a cap of c absorbs a stall of c / rate: 160 ms at 200/s).
DEFAULT_CONCURRENCY = 32


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


@dataclass(frozen=True)
class WorkloadSpec:
    rate_per_s: float = 200.0
    duration_s: float = 8.0
    initial_products: int = 50
    # Relative weights of each kind of operation after the initial products exist.
    mix: tuple[tuple[str, float], ...] = (
        ("create", 0.15), ("update", 0.30), ("stock", 0.45), ("delete", 0.10))
    # The cap on writes in flight at once (harness/workload/driver.py). Writes are sent
    # on their schedule, `rate_per_s` in index order, whatever became of the ones before
    # them; up to `concurrency` may be unanswered at the same moment, and the publisher
    # commits those in whatever order its threads get there. A scenario that needs few
    # writes overlapping (or exactly one at a time: 1) sets it lower.
    concurrency: int = DEFAULT_CONCURRENCY

    def __post_init__(self) -> None:
        # NaN compares false with everything, so "<= 0" alone would let it through.
        if not _finite(self.rate_per_s) or self.rate_per_s <= 0:
            raise ConfigError("workload.rate_per_s", f"must be > 0, got {self.rate_per_s}",
                              "give a positive rate such as 200")
        if not _finite(self.duration_s) or self.duration_s <= 0:
            raise ConfigError("workload.duration_s", f"must be > 0, got {self.duration_s}",
                              "give a positive duration in seconds such as 8")
        if isinstance(self.initial_products, bool) or not isinstance(
                self.initial_products, int) or self.initial_products < 0:
            raise ConfigError("workload.initial_products",
                              f"must be a whole number >= 0, got {self.initial_products!r}",
                              "give how many products to create first, e.g. 50")
        if not all(_finite(w) for _, w in self.mix):
            raise ConfigError("workload.mix", "weights must be finite numbers",
                              "e.g. mix=(('update', 0.5), ('stock', 0.5))")
        if any(w < 0 for _, w in self.mix) or not any(w > 0 for _, w in self.mix):
            raise ConfigError("workload.mix", "needs at least one positive weight and no "
                              "negative one", "e.g. mix=(('update', 0.5), ('stock', 0.5))")
        kinds = {k for k, _ in self.mix}
        unknown = kinds - {"create", "update", "stock", "delete"}
        if unknown:
            raise ConfigError("workload.mix", f"unknown operation kinds {sorted(unknown)}",
                              "use create, update, stock and delete")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) \
                or not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ConfigError("workload.concurrency",
                              f"must be from 1 to {MAX_CONCURRENCY}, got {self.concurrency}",
                              "give how many writes may be in flight at once, e.g. 4")
        if self.initial_products < 1 and "create" not in kinds:
            raise ConfigError("workload.initial_products", "no product would ever exist",
                              "set initial_products >= 1 or include create in mix")

    @property
    def max_ops(self) -> int:
        return self.initial_products + int(self.rate_per_s * self.duration_s)


@dataclass(frozen=True)
class Operation:
    index: int
    kind: str  # create | update | stock | delete
    product_id: int | None
    body: dict[str, Any]


@dataclass
class WorkloadGenerator:
    spec: WorkloadSpec
    rng: random.Random
    live_ids: list[int] = field(default_factory=list)
    issued: int = 0
    # The targets of the last `concurrency - 1` writes issued (None for a create): the
    # driver may not have their answers yet, so they may still be in flight.
    _recent: deque[int | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._recent = deque(maxlen=self.spec.concurrency - 1)

    def _fields(self) -> dict[str, Any]:
        return {
            "name": " ".join((self.rng.choice(WORDS), self.rng.choice(WORDS),
                              str(self.rng.randrange(10**6)))),
            "category": self.rng.choice(CATEGORIES),
            "price": self.rng.randrange(100, 100_000),
            "stock": self.rng.randrange(0, 500),
            "restricted_note": f"supplier-cost-{self.rng.randrange(10**4)}",
        }

    def next_operation(self) -> Operation:
        op = self._choose(self.issued)
        self.issued += 1
        self._recent.append(op.product_id)
        return op

    def _choose(self, index: int) -> Operation:
        if index < self.spec.initial_products or not self.live_ids:
            return Operation(index, "create", None, self._fields())
        kinds = [k for k, _ in self.spec.mix]
        weights = [w for _, w in self.spec.mix]
        kind = self.rng.choices(kinds, weights)[0]
        if kind == "create":
            return Operation(index, "create", None, self._fields())
        product_id = self.rng.choice(self.live_ids)
        if kind == "update":
            candidate = self._fields()
            keys = self.rng.sample(["name", "category", "price", "restricted_note"],
                                   self.rng.randint(1, 3))
            return Operation(index, "update", product_id, {k: candidate[k] for k in keys})
        if kind == "stock":
            delta = self.rng.choice([-5, -3, -2, -1, 1, 2, 3, 5, 10])
            return Operation(index, "stock", product_id, {"delta": delta})
        # Keep a floor of live products so updates always have targets.
        if len(self.live_ids) <= 5:
            return Operation(index, "stock", product_id, {"delta": 1})
        if product_id in self._recent:
            # A write possibly still in flight targets it: the delete could overtake that
            # write at the publisher and fail it (410), which says nothing of the system.
            others = [pid for pid in self.live_ids if pid not in self._recent]
            if not others:
                return Operation(index, "stock", product_id, {"delta": 1})
            product_id = self.rng.choice(others)
        # Gone from the model now, not when its answer is learnt (writes behind it in
        # flight): a write targeting a product deleted before it would fail with 404.
        self.live_ids.remove(product_id)
        return Operation(index, "delete", product_id, {})

    def observe(self, op: Operation, status: int, body: dict[str, Any]) -> None:
        """Learn from the publisher's answer: the ids of created products, and products an
        answer says are gone although the model holds them live (the publisher knows
        better, e.g. after a fault lost its writes)."""
        if op.kind == "create" and status == 201:
            self.live_ids.append(int(body["id"]))
        elif op.product_id in self.live_ids and status in (404, 410):
            self.live_ids.remove(op.product_id)
