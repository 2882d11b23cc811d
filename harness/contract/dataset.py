"""Canonical product rows and the order-independent dataset hash both sides compute.

Each row's 64-bit digest is split into two 31-bit halves stored with the row (h1, h2). A
dataset (or an id range of it) hashes to its row count and the two sums modulo 2**31:
independent of row order, computable as a plain SQL aggregate over an index (fast for a
million rows), and a range's hash can be compared on its own, which bisection needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

REPLICATED_FIELDS = ("name", "category", "price", "stock", "restricted_note", "version")
_HALF = (1 << 31) - 1


def canonical_row(product_id: int, row: Mapping[str, Any]) -> str:
    values = [str(product_id)] + [repr(row[f]) for f in REPLICATED_FIELDS]
    return "\x1f".join(values)


def row_digest(product_id: int, row: Mapping[str, Any]) -> int:
    digest = hashlib.blake2b(canonical_row(product_id, row).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def row_hash_parts(product_id: int, row: Mapping[str, Any]) -> tuple[int, int]:
    """(h1, h2): the two 31-bit halves stored with each row, so SQL SUM() never overflows."""
    digest = row_digest(product_id, row)
    return (digest >> 33) & _HALF, digest & _HALF


def combine(sum_h1: int, sum_h2: int) -> str:
    return f"{sum_h1 & _HALF:08x}{sum_h2 & _HALF:08x}"


def dataset_hash(rows: Iterable[tuple[int, Mapping[str, Any]]]) -> str:
    s1 = s2 = 0
    for product_id, row in rows:
        h1, h2 = row_hash_parts(product_id, row)
        s1 += h1
        s2 += h2
    return combine(s1, s2)


def summarize(rows: Iterable[tuple[int, Mapping[str, Any]]]) -> dict[str, Any]:
    """count, per-category counts and hash: the snapshot both services publish."""
    s1 = s2 = count = 0
    categories: dict[str, int] = {}
    for product_id, row in rows:
        h1, h2 = row_hash_parts(product_id, row)
        s1 += h1
        s2 += h2
        count += 1
        categories[row["category"]] = categories.get(row["category"], 0) + 1
    return {"count": count, "categories": dict(sorted(categories.items())),
            "hash": combine(s1, s2)}
