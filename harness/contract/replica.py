"""The replica table a consumer keeps, as the harness reads it straight from the consumer's
database file (never through the consumer's own API).

A consumer under test stores its copy of the products in one table, `replica_products`,
one row per product id. A deleted product keeps its row as a tombstone (`deleted` true,
`version` the version at which the consumer learned of the delete), so older events that
arrive late stay recognisably stale. Other columns (e.g. the reference consumer's digest
halves) may exist; the harness reads only these.
"""

from __future__ import annotations

from harness.contract.dataset import REPLICATED_FIELDS

TABLE = "replica_products"
KEY = "id"
DELETED = "deleted"
# What the harness reads per row: the key, every replicated field, the tombstone flag.
COLUMNS: tuple[str, ...] = (KEY, *REPLICATED_FIELDS, DELETED)
