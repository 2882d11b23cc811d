"""Canonical product rows and the order-independent dataset hash both sides compute.

The hash is the sum, modulo 2**64, of a per-row digest. Summing makes it independent of
row order, so publisher and replica can hash in whatever order their database returns, and
a range of ids can be hashed on its own for bisection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

REPLICATED_FIELDS = ("name", "category", "price", "stock", "restricted_note", "version")
_MASK = (1 << 64) - 1


def canonical_row(product_id: int, row: Mapping[str, Any]) -> str:
    values = [str(product_id)] + [repr(row[f]) for f in REPLICATED_FIELDS]
    return "\x1f".join(values)


def row_digest(product_id: int, row: Mapping[str, Any]) -> int:
    digest = hashlib.blake2b(canonical_row(product_id, row).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def dataset_hash(rows: Iterable[tuple[int, Mapping[str, Any]]]) -> str:
    total = 0
    for product_id, row in rows:
        total = (total + row_digest(product_id, row)) & _MASK
    return f"{total:016x}"


def summarize(rows: Iterable[tuple[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """count, per-category counts and hash: the snapshot both services publish."""
    total = 0
    count = 0
    categories: dict[str, int] = {}
    for product_id, row in rows:
        total = (total + row_digest(product_id, row)) & _MASK
        count += 1
        categories[row["category"]] = categories.get(row["category"], 0) + 1
    return {"count": count, "categories": dict(sorted(categories.items())),
            "hash": f"{total:016x}"}
