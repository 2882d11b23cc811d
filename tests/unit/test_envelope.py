"""Unit tests for harness.contract.envelope: strict decoding of message bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.contract import envelope as env
from harness.contract.envelope import Envelope, EnvelopeError, decode

PRODUCT_PAYLOAD: dict[str, Any] = {
    "name": "red mini 42",
    "category": "books",
    "price": 1999,
    "stock": 7,
    "restricted_note": "supplier-cost-12",
}


def make_envelope(**overrides: Any) -> Envelope:
    values: dict[str, Any] = {
        "event_id": "0b6c7a1e-8f0b-4c67-9a1c-6f1e2d3c4b5a",
        "type": env.PRODUCT_UPSERTED,
        "aggregate_id": "17",
        "version": 3,
        "sequence": 42,
        "occurred_at": 1_700_000_000.25,
        "schema_version": env.SCHEMA_VERSION,
        "payload": dict(PRODUCT_PAYLOAD),
    }
    values.update(overrides)
    return Envelope(**values)


def raw_object(**overrides: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(make_envelope().encode())
    obj.update(overrides)
    return obj


def encode_object(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


# -- accepted -------------------------------------------------------------------------------


def test_decode_accepts_a_valid_upsert() -> None:
    original = make_envelope()
    decoded = decode(original.encode())
    assert decoded == original
    assert decoded.product_id == 17


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        (env.PRODUCT_DELETED, {}),
        (env.STOCK_ADJUSTED, {"delta": -3, "stock": 4}),
        (env.PRODUCT_UPSERTED, PRODUCT_PAYLOAD),
    ],
)
def test_decode_accepts_every_event_type(kind: str, payload: dict[str, Any]) -> None:
    original = make_envelope(type=kind, payload=dict(payload))
    assert decode(original.encode()) == original


def test_decode_accepts_integer_occurred_at_and_makes_it_a_float() -> None:
    decoded = decode(encode_object(raw_object(occurred_at=1_700_000_000)))
    assert decoded.occurred_at == 1_700_000_000.0
    assert isinstance(decoded.occurred_at, float)


def test_decode_accepts_exactly_max_message_bytes() -> None:
    base = encode_object(raw_object(event_id=""))
    padding = env.MAX_MESSAGE_BYTES - len(base)
    body = encode_object(raw_object(event_id="x" * padding))
    assert len(body) == env.MAX_MESSAGE_BYTES
    assert decode(body).event_id == "x" * padding


# -- rejected -------------------------------------------------------------------------------


def _reason(raw: bytes) -> str:
    with pytest.raises(EnvelopeError) as info:
        decode(raw)
    assert str(info.value) == info.value.reason
    return info.value.reason


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"not json", b'{"event_id": }', b"\xff\xfe\x00garbage"],
    ids=["empty", "truncated", "text", "bad-value", "bad-utf8"],
)
def test_decode_rejects_malformed_json(raw: bytes) -> None:
    assert _reason(raw).startswith("malformed JSON: ")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"[]", "list"), (b"42", "int"), (b'"text"', "str"), (b"null", "NoneType"),
     (b"true", "bool")],
)
def test_decode_rejects_non_object_json(raw: bytes, kind: str) -> None:
    assert _reason(raw) == f"malformed envelope: expected an object, got {kind}"


@pytest.mark.parametrize(
    "field",
    ["event_id", "type", "aggregate_id", "version", "sequence", "occurred_at",
     "schema_version", "payload"],
)
def test_decode_rejects_each_missing_envelope_field(field: str) -> None:
    raw = encode_object(without(raw_object(), field))
    assert _reason(raw) == f"missing field: {field}"


@pytest.mark.parametrize(
    ("field", "value", "type_name"),
    [
        ("event_id", 12, "int"),
        ("type", None, "NoneType"),
        ("aggregate_id", 17, "int"),
        ("version", "3", "str"),
        ("version", 3.0, "float"),
        ("version", True, "bool"),
        ("sequence", False, "bool"),
        ("sequence", [1], "list"),
        ("occurred_at", "yesterday", "str"),
        ("occurred_at", True, "bool"),
        ("schema_version", True, "bool"),
        ("schema_version", "1", "str"),
        ("payload", [], "list"),
        ("payload", "{}", "str"),
    ],
)
def test_decode_rejects_wrong_types(field: str, value: Any, type_name: str) -> None:
    raw = encode_object(raw_object(**{field: value}))
    assert _reason(raw) == f"wrong type for {field}: {type_name}"


@pytest.mark.parametrize("version", [0, 2, 99])
def test_decode_rejects_unknown_schema_version(version: int) -> None:
    raw = encode_object(raw_object(schema_version=version))
    assert _reason(raw) == f"unknown schema_version: {version}"


@pytest.mark.parametrize("kind", ["ProductCreated", "productupserted", ""])
def test_decode_rejects_unknown_type(kind: str) -> None:
    assert _reason(encode_object(raw_object(type=kind))) == f"unknown type: {kind}"


@pytest.mark.parametrize("aggregate_id", ["abc", "", "-1", "1.5", " 7", "7 ", "0x10"])
def test_decode_rejects_non_numeric_aggregate_id(aggregate_id: str) -> None:
    raw = encode_object(raw_object(aggregate_id=aggregate_id))
    assert _reason(raw) == f"wrong value for aggregate_id: {aggregate_id!r}"


def test_decode_rejects_unicode_digit_aggregate_id_that_int_cannot_parse() -> None:
    raw = encode_object(raw_object(aggregate_id="²"))
    with pytest.raises(EnvelopeError, match="aggregate_id"):
        decode(raw).product_id  # noqa: B018  (the property is what blows up)


@pytest.mark.parametrize("version", [0, -1, -100])
def test_decode_rejects_version_below_one(version: int) -> None:
    raw = encode_object(raw_object(version=version))
    assert _reason(raw) == f"wrong value for version: {version}"


@pytest.mark.parametrize("field", sorted(env.PRODUCT_FIELDS))
def test_decode_rejects_upsert_missing_payload_field(field: str) -> None:
    raw = encode_object(raw_object(payload=without(PRODUCT_PAYLOAD, field)))
    assert _reason(raw) == f"missing field: payload.{field}"


@pytest.mark.parametrize(
    ("field", "value", "type_name"),
    [
        ("name", 5, "int"),
        ("category", None, "NoneType"),
        ("price", 19.99, "float"),
        ("price", "1999", "str"),
        ("price", True, "bool"),
        ("stock", False, "bool"),
        ("stock", 7.0, "float"),
        ("restricted_note", ["x"], "list"),
    ],
)
def test_decode_rejects_upsert_payload_wrong_type(field: str, value: Any,
                                                  type_name: str) -> None:
    raw = encode_object(raw_object(payload={**PRODUCT_PAYLOAD, field: value}))
    assert _reason(raw) == f"wrong type for payload.{field}: {type_name}"


@pytest.mark.parametrize("field", ["delta", "stock"])
def test_decode_rejects_stock_adjusted_missing_payload_field(field: str) -> None:
    payload = without({"delta": 2, "stock": 9}, field)
    raw = encode_object(raw_object(type=env.STOCK_ADJUSTED, payload=payload))
    assert _reason(raw) == f"missing field: payload.{field}"


@pytest.mark.parametrize(
    ("field", "value", "type_name"),
    [("delta", "2", "str"), ("delta", 2.5, "float"), ("delta", True, "bool"),
     ("stock", None, "NoneType"), ("stock", False, "bool")],
)
def test_decode_rejects_stock_adjusted_payload_wrong_type(field: str, value: Any,
                                                          type_name: str) -> None:
    payload = {"delta": 2, "stock": 9, field: value}
    raw = encode_object(raw_object(type=env.STOCK_ADJUSTED, payload=payload))
    assert _reason(raw) == f"wrong type for payload.{field}: {type_name}"


def test_decode_rejects_oversized_message_before_parsing() -> None:
    # Valid JSON, so only the size check can reject it.
    body = encode_object(raw_object(event_id="x" * env.MAX_MESSAGE_BYTES))
    assert len(body) > env.MAX_MESSAGE_BYTES
    assert _reason(body) == f"oversized: {len(body)} bytes > {env.MAX_MESSAGE_BYTES}"


def test_decode_rejects_one_byte_over_the_limit() -> None:
    body = b" " * (env.MAX_MESSAGE_BYTES + 1)
    assert _reason(body).startswith("oversized: ")


def test_first_missing_field_is_reported_in_declaration_order() -> None:
    raw = encode_object({"payload": {}})
    assert _reason(raw) == "missing field: event_id"


def test_envelope_error_is_a_value_error() -> None:
    assert issubclass(EnvelopeError, ValueError)


# -- property -------------------------------------------------------------------------------

_text = st.text(max_size=30)
_ints = st.integers(min_value=-(2**31), max_value=2**31)

_payloads: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    env.PRODUCT_UPSERTED: st.fixed_dictionaries({
        "name": _text, "category": _text, "price": _ints, "stock": _ints,
        "restricted_note": _text}),
    env.STOCK_ADJUSTED: st.fixed_dictionaries({"delta": _ints, "stock": _ints}),
    env.PRODUCT_DELETED: st.just({}),
}


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    kind = draw(st.sampled_from(sorted(env.EVENT_TYPES)))
    return Envelope(
        event_id=draw(_text),
        type=kind,
        aggregate_id=str(draw(st.integers(min_value=0, max_value=10**12))),
        version=draw(st.integers(min_value=1, max_value=2**40)),
        sequence=draw(st.integers(min_value=0, max_value=2**40)),
        occurred_at=draw(st.floats(min_value=0, max_value=4e9, allow_nan=False)),
        schema_version=draw(st.sampled_from(sorted(env.SUPPORTED_SCHEMA_VERSIONS))),
        payload=draw(_payloads[kind]),
    )


@given(envelopes())
def test_encode_decode_round_trips(original: Envelope) -> None:
    raw = original.encode()
    decoded = decode(raw)
    assert decoded == original
    assert decoded.encode() == raw
    assert decoded.product_id == int(original.aggregate_id)
