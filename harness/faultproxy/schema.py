"""Request bodies of the API, decoded and checked in Toxiproxy's order and wording."""

from __future__ import annotations

from dataclasses import dataclass

from harness.faultproxy.errors import ApiError
from harness.faultproxy.jsonio import (
    Field,
    JsonBodyError,
    JsonObject,
    bind_object,
    decode_body,
    type_error,
)
from harness.faultproxy.toxics import TOXIC_TYPES, Direction, ToxicType

_PROXY_FIELDS = (
    Field("name", "string"),
    Field("listen", "string"),
    Field("upstream", "string"),
    Field("enabled", "bool"),
)
_TOXIC_FIELDS = (
    Field("name", "string"),
    Field("type", "string"),
    Field("stream", "string"),
    Field("toxicity", "float32"),
)
_TOXICITY = (Field("toxicity", "float32"),)


def bad_body(exc: JsonBodyError) -> ApiError:
    return ApiError(f"bad request body: {exc}", 400)


def missing_field(what: str) -> ApiError:
    return ApiError(f"missing required field: {what}", 400)


@dataclass
class ProxyInput:
    name: str
    listen: str
    upstream: str
    enabled: bool | None


def _bind_proxy(value: object, base: ProxyInput, struct_name: str, go_type: str) -> ProxyInput:
    bound = bind_object(value, _PROXY_FIELDS, struct_name, go_type)
    enabled = bound.get("enabled", base.enabled)
    return ProxyInput(
        name=str(bound.get("name", base.name)),
        listen=str(bound.get("listen", base.listen)),
        upstream=str(bound.get("upstream", base.upstream)),
        enabled=bool(enabled) if enabled is not None else None,
    )


def proxy_input(body: bytes, base: ProxyInput) -> ProxyInput:
    """Decode a create/update body over ``base`` (fields absent or null keep base values)."""
    try:
        return _bind_proxy(decode_body(body), base, "Proxy", "toxiproxy.Proxy")
    except JsonBodyError as exc:
        raise bad_body(exc) from None


def populate_input(body: bytes) -> list[ProxyInput]:
    """Decode and validate a ``/populate`` array; nothing is applied if any entry fails."""
    try:
        value = decode_body(body)
        if value is None:
            return []
        if not isinstance(value, list):
            raise JsonBodyError(type_error(value, "Go value", "[]toxiproxy.Proxy"))
        blank = ProxyInput("", "", "", None)
        entries = [_bind_proxy(item, blank, "", "toxiproxy.Proxy") for item in value]
    except JsonBodyError as exc:
        raise bad_body(exc) from None
    for number, entry in enumerate(entries, start=1):
        if not entry.name:
            raise missing_field(f"name at proxy {number}")
        if not entry.upstream:
            raise missing_field(f"upstream at proxy {number}")
    return entries


@dataclass
class ToxicInput:
    name: str
    type_name: str
    stream: str
    toxicity: float
    attributes: object


def toxic_input(body: bytes) -> ToxicInput:
    """Decode a toxic-create body; attribute values are checked later (see attributes())."""
    try:
        value = decode_body(body)
        bound = bind_object(value, _TOXIC_FIELDS, "ToxicWrapper", "toxics.ToxicWrapper")
        attributes = _attributes_value(value)
        if attributes is not None and not isinstance(attributes, JsonObject):
            location = "Go struct field ToxicWrapper.attributes"
            raise JsonBodyError(type_error(attributes, location, "toxics.NoopToxic"))
    except JsonBodyError as exc:
        raise bad_body(exc) from None
    toxicity = bound.get("toxicity", 1.0)
    assert isinstance(toxicity, float | int)
    return ToxicInput(
        name=str(bound.get("name", "")),
        type_name=str(bound.get("type", "")),
        stream=str(bound.get("stream", "downstream")),
        toxicity=float(toxicity),
        attributes=attributes,
    )


def stream_direction(stream: str) -> Direction:
    lowered = stream.lower()
    if lowered == "upstream":
        return "upstream"
    if lowered == "downstream":
        return "downstream"
    raise ApiError("stream was invalid, can be either upstream or downstream", 400)


def toxic_type(name: str) -> ToxicType:
    found = TOXIC_TYPES.get(name)
    if found is None:
        raise ApiError("invalid toxic type", 400)
    return found


def attributes(value: object, kind: ToxicType) -> dict[str, int]:
    """Check attribute values against the type's integer fields; return those given."""
    if not isinstance(value, JsonObject):
        if value is None:
            return {}
        location = "Go struct field .attributes"
        raise bad_body(JsonBodyError(type_error(value, location, f"toxics.{kind.go_struct}")))
    fields = [Field(name, "int" if kind.go_int == "int" else "int64") for name in kind.attributes]
    try:
        bound = bind_object(value, fields, ".attributes", f"toxics.{kind.go_struct}")
    except JsonBodyError as exc:
        raise bad_body(exc) from None
    return {name: number for name, number in bound.items() if isinstance(number, int)}


def toxic_update_input(body: bytes, kind: ToxicType) -> tuple[dict[str, int], float | None]:
    """Decode a toxic-update body: attributes to merge, and the new toxicity if given."""
    try:
        value = decode_body(body)
        bound = bind_object(value, _TOXICITY, "", "struct")
    except JsonBodyError as exc:
        raise bad_body(exc) from None
    toxicity = bound.get("toxicity")
    assert toxicity is None or isinstance(toxicity, float | int)
    merged = attributes(_attributes_value(value), kind)
    return merged, None if toxicity is None else float(toxicity)


def _attributes_value(value: object) -> object:
    """The last ``attributes`` key (any letter case) of a JSON object, else None."""
    found: object = None
    if isinstance(value, JsonObject):
        for key, item in value.pairs:
            if key.lower() == "attributes":
                found = item
    return found

