"""Who may read what: the publisher's grants, shared by the services and the harness.

A product's *restricted* fields (RESTRICTED_FIELDS) reach only the consumers granted them.
The publisher is started with a `Grants`: one bearer token per consumer with the
restricted fields it may read, and an admin token for the control endpoints of both
services (the harness holds it). Everything a caller reads is its *view* of a product:
the row with every restricted field it is not granted replaced by REDACTED. Events on the
broker carry the view every subscriber may see (no restricted value) and name the
restricted fields they withheld (`payload["withheld"]`); a granted consumer fetches those
values through the API. Hashes served to a caller are over its view, so a consumer
without a grant verifies its replica, which holds REDACTED there, against the source.

Only two views exist for hashing: all restricted fields, or none. A grant of some but not
all of them is refused (`Grants.from_json`), which with one restricted field is no loss.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RESTRICTED_FIELDS: tuple[str, ...] = ("restricted_note",)
REDACTED = ""
"""What a view holds in place of a restricted value it may not see (and what a consumer
without the grant stores): the empty string, the field's value when nothing was noted."""
WITHHELD = "withheld"
"""The payload key of an event naming the restricted fields whose values it left out."""
HEADER = "Authorization"
SCHEME = "Bearer"


def header(token: str) -> dict[str, str]:
    """The HTTP header that presents `token`."""
    return {HEADER: f"{SCHEME} {token}"}


def redact(row: Mapping[str, Any], granted: Iterable[str]) -> dict[str, Any]:
    """`row` as a caller granted `granted` sees it: every restricted field it is not
    granted (and that the row has) holds REDACTED."""
    allowed = set(granted)
    return {k: (REDACTED if k in RESTRICTED_FIELDS and k not in allowed else v)
            for k, v in row.items()}


def leaked(row: Mapping[str, Any], granted: Iterable[str]) -> dict[str, Any]:
    """The restricted values in `row` that a holder granted `granted` must not have."""
    allowed = set(granted)
    return {k: row[k] for k in RESTRICTED_FIELDS
            if k not in allowed and row.get(k, REDACTED) not in (REDACTED, None)}


@dataclass(frozen=True)
class Grant:
    consumer: str
    token: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grants:
    admin_token: str
    consumers: tuple[Grant, ...] = field(default_factory=tuple)

    def by_token(self, token: str) -> Grant | None:
        return next((g for g in self.consumers if g.token == token), None)

    def for_consumer(self, name: str) -> Grant | None:
        return next((g for g in self.consumers if g.consumer == name), None)

    def to_json(self) -> str:
        return json.dumps({"admin_token": self.admin_token,
                           "consumers": {g.consumer: {"token": g.token,
                                                      "fields": list(g.fields)}
                                         for g in self.consumers}})

    @classmethod
    def from_json(cls, text: str) -> Grants:
        """Parse `to_json`'s form; raises ValueError naming what is wrong."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("admin_token"), str) \
                or not data["admin_token"] or not isinstance(data.get("consumers", {}), dict):
            raise ValueError('grants: give {"admin_token": "...", "consumers": '
                             '{"<name>": {"token": "...", "fields": [...]}}}')
        grants = []
        for name, entry in data.get("consumers", {}).items():
            token, fields = entry.get("token"), tuple(entry.get("fields", ()))
            if not isinstance(token, str) or not token or token == data["admin_token"]:
                raise ValueError(f"grants: consumer {name} needs a token of its own")
            unknown = set(fields) - set(RESTRICTED_FIELDS)
            if unknown:
                raise ValueError(f"grants: consumer {name} is granted {sorted(unknown)}, "
                                 f"which are not restricted fields {RESTRICTED_FIELDS}")
            if fields and set(fields) != set(RESTRICTED_FIELDS):
                raise ValueError(f"grants: consumer {name} must be granted all of "
                                 f"{RESTRICTED_FIELDS} or none (hashes exist for those "
                                 "two views only)")
            grants.append(Grant(name, token, fields))
        tokens = [g.token for g in grants]
        if len(set(tokens)) != len(tokens):
            raise ValueError("grants: two consumers share a token")
        return cls(data["admin_token"], tuple(grants))


def issue(seed: int, consumers: Mapping[str, Iterable[str]]) -> Grants:
    """Tokens for a run, drawn from its seed (a rerun with the seed gets the same ones):
    one per consumer name, granted the given restricted fields, and the admin token."""
    rng = random.Random(f"grants-{seed}")

    def token() -> str:
        return f"{rng.getrandbits(128):032x}"

    admin = token()
    return Grants(admin, tuple(Grant(name, token(), tuple(fields))
                               for name, fields in consumers.items()))
