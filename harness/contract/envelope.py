"""The event envelope shared by publisher and consumer (docs/contract.md).

One JSON object per message. `decode` is strict: anything a consumer cannot safely apply
raises `EnvelopeError` with a reason meant for a dead-letter record.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
MAX_MESSAGE_BYTES = 256 * 1024
MAX_INT64 = 2**63 - 1

PRODUCT_UPSERTED = "ProductUpserted"
PRODUCT_DELETED = "ProductDeleted"
STOCK_ADJUSTED = "StockAdjusted"
EVENT_TYPES = frozenset({PRODUCT_UPSERTED, PRODUCT_DELETED, STOCK_ADJUSTED})

# Fields of a product that travel in ProductUpserted and are compared by integrity checks.
PRODUCT_FIELDS: dict[str, type] = {
    "name": str,
    "category": str,
    "price": int,  # minor units (cents): floats would make dataset hashes unstable
    "stock": int,
    "restricted_note": str,
}


class EnvelopeError(ValueError):
    """A message that cannot be applied; `reason` is what the dead-letter store keeps."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Envelope:
    event_id: str
    type: str
    aggregate_id: str
    version: int
    sequence: int
    occurred_at: float  # seconds since the epoch, publisher clock
    schema_version: int
    payload: dict[str, Any]

    @property
    def product_id(self) -> int:
        return int(self.aggregate_id)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "event_id": self.event_id,
                "type": self.type,
                "aggregate_id": self.aggregate_id,
                "version": self.version,
                "sequence": self.sequence,
                "occurred_at": self.occurred_at,
                "schema_version": self.schema_version,
                "payload": self.payload,
            },
            separators=(",", ":"),
        ).encode()


def new_event_id() -> str:
    return str(uuid.uuid4())


_ENVELOPE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "event_id": str,
    "type": str,
    "aggregate_id": str,
    "version": int,
    "sequence": int,
    "occurred_at": (int, float),
    "schema_version": int,
    "payload": dict,
}


FIELD_NAMES = tuple(_ENVELOPE_FIELDS)


def from_event(event: dict[str, Any]) -> Envelope:
    """An Envelope from a published-event record (e.g. the publisher's GET /events)."""
    return Envelope(**{name: event[name] for name in FIELD_NAMES})


def _require(obj: dict[str, Any], fields: dict[str, Any], where: str) -> None:
    for name, kind in fields.items():
        if name not in obj:
            raise EnvelopeError(f"missing field: {where}{name}")
        value = obj[name]
        # bool is an int subclass; a version of `true` is a wrong type, not 1.
        if isinstance(value, bool) or not isinstance(value, kind):
            raise EnvelopeError(
                f"wrong type for {where}{name}: {type(value).__name__}"
            )


def decode(raw: bytes) -> Envelope:
    """Parse and validate one message body."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise EnvelopeError(f"oversized: {len(raw)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError(f"malformed JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise EnvelopeError(f"malformed envelope: expected an object, got {type(obj).__name__}")
    _require(obj, _ENVELOPE_FIELDS, "")
    if obj["schema_version"] not in SUPPORTED_SCHEMA_VERSIONS:
        raise EnvelopeError(f"unknown schema_version: {obj['schema_version']}")
    if obj["type"] not in EVENT_TYPES:
        raise EnvelopeError(f"unknown type: {obj['type']}")
    # isascii: str.isdigit() also accepts digits like "²" that int() cannot parse.
    if not (obj["aggregate_id"].isascii() and obj["aggregate_id"].isdigit()):
        raise EnvelopeError(f"wrong value for aggregate_id: {obj['aggregate_id']!r}")
    if obj["version"] < 1:
        raise EnvelopeError(f"wrong value for version: {obj['version']}")
    # Databases store these as 64-bit integers; a larger one would fail the whole batch.
    for name in ("version", "sequence"):
        if obj[name] > MAX_INT64:
            raise EnvelopeError(f"wrong value for {name}: {obj[name]} exceeds 64 bits")
    if len(obj["aggregate_id"]) > 18:
        raise EnvelopeError(f"wrong value for aggregate_id: {obj['aggregate_id']!r} too long")
    payload = obj["payload"]
    if obj["type"] == PRODUCT_UPSERTED:
        _require(payload, PRODUCT_FIELDS, "payload.")
    elif obj["type"] == STOCK_ADJUSTED:
        _require(payload, {"delta": int, "stock": int}, "payload.")
    return Envelope(
        event_id=obj["event_id"],
        type=obj["type"],
        aggregate_id=obj["aggregate_id"],
        version=obj["version"],
        sequence=obj["sequence"],
        occurred_at=float(obj["occurred_at"]),
        schema_version=obj["schema_version"],
        payload=payload,
    )
