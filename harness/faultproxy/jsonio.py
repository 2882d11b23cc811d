"""JSON decoding and encoding with the quirks of Go's ``encoding/json``.

Toxiproxy decodes request bodies into Go structs, and clients depend on how that behaves:
object keys match struct fields case-insensitively, unknown keys are ignored, ``null`` leaves
a field untouched, only the first JSON value of a body is read, and integer fields reject
``100.0``. Replies are written by ``json.Marshal``: compact, with ``<``, ``>`` and ``&``
escaped, and ``float32`` values printed with the fewest digits that round-trip.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

GoType = Literal["string", "bool", "int64", "int", "float32"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


class JsonBodyError(Exception):
    """The body could not be decoded; the message is Go's decoder error text."""


class FloatLiteral(float):
    """A JSON number written with a fraction or exponent, keeping its source text.

    Go refuses ``100.0`` for an integer field and quotes the literal in its error, so the
    text has to survive parsing.
    """

    __slots__ = ("literal",)
    literal: str

    def __new__(cls, literal: str) -> FloatLiteral:
        value = super().__new__(cls, literal)
        value.literal = literal
        return value


class JsonObject:
    """A decoded JSON object that keeps every key/value pair in document order.

    A plain dict would merge ``"name"`` and ``"Name"`` in the wrong order: Go lets the key
    that appears last win even when the two differ only in case.
    """

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        self.pairs = pairs


@dataclass(frozen=True)
class Field:
    """One struct field a JSON object can be bound to."""

    name: str
    go_type: GoType


def _reject_constant(name: str) -> object:
    raise JsonBodyError(f"invalid character '{name[0]}' looking for beginning of value")


_DECODER = json.JSONDecoder(
    object_pairs_hook=JsonObject,
    parse_float=FloatLiteral,
    parse_constant=_reject_constant,
)


def decode_body(body: bytes) -> object:
    """Decode the first JSON value of ``body`` the way ``json.NewDecoder(r).Decode`` does."""
    text = body.decode("utf-8", errors="replace")
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        raise JsonBodyError("EOF")
    try:
        value, _end = _DECODER.raw_decode(stripped)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(stripped.rstrip(" \t\r\n")):
            raise JsonBodyError("unexpected EOF") from None
        char = stripped[exc.pos]
        raise JsonBodyError(f"invalid character {_quote_char(char)} {_context(exc)}") from None
    # Trailing bytes after the first value are ignored, as a streaming Go decoder never
    # reads them.
    return value


def _quote_char(char: str) -> str:
    return "'\\''" if char == "'" else f"'{char}'"


def _context(exc: json.JSONDecodeError) -> str:
    if "Expecting property name" in exc.msg:
        return "looking for beginning of object key string"
    if "Expecting ':'" in exc.msg:
        return "after object key"
    if "Expecting ',' delimiter" in exc.msg:
        return "after object key:value pair"
    return "looking for beginning of value"


def json_kind(value: object, *, with_literal: bool = False) -> str:
    """Name a JSON value's kind as Go's type errors do (``number 1.5``, ``string``...)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, FloatLiteral):
        return f"number {value.literal}" if with_literal else "number"
    if isinstance(value, int):
        return f"number {value}" if with_literal else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_error(value: object, location: str, go_type: str, *, with_literal: bool = False) -> str:
    kind = json_kind(value, with_literal=with_literal)
    return f"json: cannot unmarshal {kind} into {location} of type {go_type}"


def bind_object(
    value: object,
    fields: Sequence[Field],
    struct_name: str,
    go_value_type: str,
) -> dict[str, object]:
    """Bind a decoded JSON object onto ``fields``; return the non-null values given.

    Keys match fields case-insensitively and the last matching key wins; ``null`` values
    and unknown keys are skipped. Raises JsonBodyError with Go's message on a type clash.
    """
    if not isinstance(value, JsonObject):
        if value is None:
            return {}
        raise JsonBodyError(type_error(value, "Go value", go_value_type))
    by_folded = {field.name.lower(): field for field in fields}
    result: dict[str, object] = {}
    for key, item in value.pairs:
        field = by_folded.get(key.lower())
        if field is None or item is None:
            continue
        location = f"Go struct field {struct_name}.{field.name}"
        result[field.name] = convert(item, field.go_type, location)
    return result


def convert(value: object, go_type: GoType, location: str) -> object:
    """Check one non-null JSON value against a Go scalar type and return the Python value."""
    if go_type == "string":
        if isinstance(value, str):
            return value
    elif go_type == "bool":
        if isinstance(value, bool):
            return value
    elif go_type in ("int64", "int"):
        if isinstance(value, int) and not isinstance(value, bool):
            if _INT64_MIN <= value <= _INT64_MAX:
                return value
            raise JsonBodyError(type_error(value, location, go_type, with_literal=True))
        if isinstance(value, FloatLiteral):
            raise JsonBodyError(type_error(value, location, go_type, with_literal=True))
    elif go_type == "float32" and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return to_float32(float(value))
        except OverflowError:
            raise JsonBodyError(
                type_error(value, location, go_type, with_literal=True)
            ) from None
    raise JsonBodyError(type_error(value, location, go_type))


def to_float32(value: float) -> float:
    """Round to the nearest float32, returned as the shortest decimal that round-trips.

    Go prints float32 fields with the fewest digits identifying the float32, so storing
    that decimal makes Python's ``repr`` produce the same text (``0.3``, not
    ``0.30000001192092896``).
    """
    packed = struct.pack("<f", value)
    single: float = struct.unpack("<f", packed)[0]
    if math.isnan(single) or math.isinf(single):
        return single
    for digits in range(1, 10):
        candidate = float(f"{single:.{digits}g}")
        if struct.pack("<f", candidate) == packed:
            return candidate
    return single


def go_number(value: float) -> int | float:
    """Render a float as Go does: integral values carry no fraction (``1``, not ``1.0``)."""
    if value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


_HTML_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def encode(value: object) -> bytes:
    """Serialise like ``json.Marshal``: compact, UTF-8, HTML-sensitive characters escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # Those characters can only occur inside JSON strings, so a textual replace is safe.
    for raw, escaped in _HTML_ESCAPES:
        if raw in text:
            text = text.replace(raw, escaped)
    return text.encode("utf-8")
