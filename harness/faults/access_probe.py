"""Calls every endpoint of a service with no credential, a wrong one, and a consumer's
where the admin's is needed (action `unauthorized_calls`): each must be refused (401
without a credential, 403 with one that is wrong or not allowed there), and the state
those calls would change must read the same, as the admin, before and after. On the
publisher, each consumer's own credential is also used on every read endpoint: a consumer
not granted a restricted field must get no value of it from any of them.

The harness's own calls, scheduled like a fault so they run under load; what they saw is
judged by `credentials_enforced` (harness/checkers/authorization.py) from `details()`.
The product writes and /health are open by design (docs/authorization.md) and not called.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from harness.contract.grants import RESTRICTED_FIELDS, Grants, header, leaked
from harness.faults.base import Evidence, Fault
from harness.runtime.base import Component

WRONG_TOKEN = "not-a-token-of-this-run"
# Harmless if wrongly obeyed, and visible in the state read after: a point armed after a
# million hits, one relay drop, a consumer variant switched.
_HARMLESS_HITS = 1_000_000


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    admin: bool = True  # needs the admin credential (else any consumer's will do)


PUBLISHER_CALLS = (
    Call("GET", "/products/1", admin=False),
    Call("POST", "/products/batch", {"ids": [1, 2, 3]}, admin=False),
    Call("GET", "/products", params={"lo": 0, "hi": 100}, admin=False),
    Call("GET", "/ranges", params={"bounds": "0-100"}, admin=False),
    Call("GET", "/snapshot", admin=False),
    Call("GET", "/export", admin=False),
    Call("GET", "/events", params={"after": 0, "limit": 100}, admin=False),
    Call("POST", "/events/restricted", {"event_ids": []}, admin=False),
    Call("GET", "/grants/mine", admin=False),
    Call("GET", "/admin/crash-points"),
    Call("POST", "/admin/crash-points", {"point": "relay.after_commit_before_publish",
                                         "after_hits": _HARMLESS_HITS}),
    Call("GET", "/admin/relay-faults"),
    Call("POST", "/admin/relay-faults", {"drop_next": 1}),
    Call("GET", "/admin/commit-delay"),
    Call("POST", "/admin/commit-delay", {"count": 1, "hold_s": 0.1}),
)
CONSUMER_CALLS = (
    Call("GET", "/replica/snapshot"),
    Call("GET", "/replica/ranges", params={"bounds": "0-100"}),
    Call("GET", "/replica/export"),
    Call("GET", "/deliveries", params={"after": 0, "limit": 10}),
    Call("GET", "/dead-letters"),
    Call("GET", "/stats"),
    Call("GET", "/resync"),
    Call("POST", "/resync", {"full": True}),
    Call("POST", "/verify", {}),
    Call("POST", "/admin/variant", {"variant": "truncate_names"}),
    Call("GET", "/admin/crash-points"),
    Call("POST", "/admin/crash-points", {"point": "consumer.before_commit",
                                         "after_hits": _HARMLESS_HITS}),
)
# Read endpoints whose answer carries product rows or events: scanned for restricted values
# when called with a consumer's own credential.
_ROWS = {"/products/1", "/products/batch", "/products", "/export", "/events"}


def _state(client: httpx.Client, publisher: bool) -> dict[str, Any]:
    """What a wrongly obeyed call would change, read as the admin."""
    def get(path: str) -> Any:
        response = client.get(path, timeout=10.0)
        response.raise_for_status()
        return response.json()

    if publisher:
        return {"crash_points": get("/admin/crash-points")["armed"],
                "relay_faults": {k: v for k, v in get("/admin/relay-faults").items()
                                 if k in ("drop_next", "corrupt_next")},
                "commit_delay": get("/admin/commit-delay")["remaining"]}
    return {"crash_points": get("/admin/crash-points")["armed"],
            "variant": get("/health")["variant"], "resyncs": len(get("/resync"))}


def _values_in(text: str, granted: tuple[str, ...]) -> list[str]:
    """Restricted values a holder of `granted` may not see, found in a JSON or NDJSON
    answer (rows, events and their payloads, and `restricted` beside them)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            found.extend(f"{k} {v!r}" for k, v in leaked(value, granted).items())
            for key, inner in value.items():
                if key == "restricted" and isinstance(inner, dict):
                    found.extend(f"{k} {v!r}" for k, v in leaked(inner, granted).items())
                else:
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    try:
        walk(json.loads(text))
    except ValueError:  # NDJSON (the export): a JSON value per line
        for line in text.splitlines():
            if line.strip():
                walk(json.loads(line))
    return found


class AccessProbe(Fault):
    slows_replication = False

    def __init__(self, service: Component, target: str, grants: Grants) -> None:
        self.service = service
        self.publisher = target == "publisher"
        self.grants = grants
        self.name = f"unauthorized_calls:{target}"
        self.calls: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}
        self.error = ""

    def _call(self, client: httpx.Client, call: Call, token: str | None) -> httpx.Response:
        return client.request(call.method, call.path, json=call.body, params=call.params,
                              headers=header(token) if token is not None else None,
                              timeout=30.0)

    def inject(self) -> None:
        url = self.service.endpoint().http_url()
        with httpx.Client(base_url=url, headers=header(self.grants.admin_token)) as admin, \
                httpx.Client(base_url=url) as anonymous:
            try:
                self.before = _state(admin, self.publisher)
                for call in PUBLISHER_CALLS if self.publisher else CONSUMER_CALLS:
                    attempts: list[tuple[str, str | None, int]] = [
                        ("no credential", None, 401), ("a wrong credential", WRONG_TOKEN, 403)]
                    if call.admin:
                        attempts += [(f"{g.consumer}'s credential", g.token, 403)
                                     for g in self.grants.consumers]
                    for who, token, expected in attempts:
                        status = self._call(anonymous, call, token).status_code
                        self.calls.append({"call": f"{call.method} {call.path}", "with": who,
                                           "status": status, "expected": expected})
                    if self.publisher and not call.admin:
                        self._probe_views(anonymous, call)
                self.after = _state(admin, self.publisher)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self.error = f"{type(exc).__name__}: {exc}"

    def _probe_views(self, client: httpx.Client, call: Call) -> None:
        """The call with each consumer's own credential: allowed, and without a value of
        a restricted field the consumer is not granted."""
        for grant in self.grants.consumers:
            response = self._call(client, call, grant.token)
            seen = _values_in(response.text, grant.fields) \
                if response.status_code == 200 and call.path in _ROWS else []
            # A product deleted or never written is a 410 or 404, as for the admin.
            ok = response.status_code in (200, 404, 410) or (
                call.path == "/events/restricted" and response.status_code == 403
                and set(grant.fields) < set(RESTRICTED_FIELDS))
            self.views.append({"call": f"{call.method} {call.path}",
                               "consumer": grant.consumer, "status": response.status_code,
                               "allowed": ok, "leaked": seen[:5]})

    def heal(self) -> None:
        """Nothing to undo: a call obeyed by mistake is the finding."""

    def evidence(self) -> Evidence:
        if self.error or not self.calls:
            return Evidence(False, f"{self.name} could not run: {self.error or 'no calls'}")
        return Evidence(True, f"{self.name}: {len(self.calls)} calls without or with a "
                              f"wrong credential, {len(self.views)} with a consumer's own")

    def details(self) -> dict[str, Any]:
        return {"access_probe": {"service": "publisher" if self.publisher else "consumer",
                                 "calls": self.calls, "views": self.views,
                                 "state_before": self.before, "state_after": self.after,
                                 "error": self.error}}
