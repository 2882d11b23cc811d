"""Bearer-token authorization for the services' HTTP APIs (harness/contract/grants.py).

Each request is classified by the app (`Access`): PUBLIC needs nothing, READ a consumer's
token or the admin token, ADMIN the admin token. No credential is a 401; a credential that
is unknown, or known but not allowed here, is a 403. The caller is kept in `flask.g` for
the handlers that filter what they answer by its grants (`caller()`).

Without grants (a service started by hand, a unit test) every caller is the admin: the
harness always starts the services with grants.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, g, request

from harness.contract.grants import HEADER, RESTRICTED_FIELDS, SCHEME, Grants
from reference_services.common.http import json_error


class Access(enum.Enum):
    PUBLIC = "public"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    name: str
    admin: bool
    fields: frozenset[str]  # the restricted fields it may read

    @property
    def sees_all(self) -> bool:
        return self.fields >= set(RESTRICTED_FIELDS)


ADMIN = Caller("admin", True, frozenset(RESTRICTED_FIELDS))


def _identify(grants: Grants, token: str) -> Caller | None:
    # Constant-time comparisons: a token is not guessed byte by byte from answer times.
    if hmac.compare_digest(token, grants.admin_token):
        return ADMIN
    for grant in grants.consumers:
        if hmac.compare_digest(token, grant.token):
            return Caller(grant.consumer, False, frozenset(grant.fields))
    return None


def install(app: Flask, grants: Grants | None,
            access: Callable[[str, str], Access]) -> None:
    """Check every request to `app` against `grants`; `access(method, path)` says what a
    request needs."""

    @app.before_request
    def authorize() -> tuple[Response, int] | None:
        needed = access(request.method, request.path)
        if grants is None:
            g.caller = ADMIN
            return None
        if needed is Access.PUBLIC:
            g.caller = None
            return None
        scheme, _, token = request.headers.get(HEADER, "").partition(" ")
        if scheme != SCHEME or not token:
            return json_error(401, f"{request.method} {request.path} needs a credential: "
                                   f"{HEADER}: {SCHEME} <token>")
        who = _identify(grants, token.strip())
        if who is None:
            return json_error(403, "unknown credential")
        if needed is Access.ADMIN and not who.admin:
            return json_error(403, f"{request.method} {request.path} needs the admin "
                                   f"credential; {who.name} is a consumer")
        g.caller = who
        return None


def caller() -> Caller:
    """Who made the current request (a READ or ADMIN one)."""
    who = g.get("caller")
    assert isinstance(who, Caller), "caller() on a public endpoint"
    return who
