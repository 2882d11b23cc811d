"""A typed client for the observation and admin HTTP API a service under test offers.

Publisher: `GET /snapshot`, `/export` (NDJSON, first line the high-water mark), `/events`,
`/products/{id}`, `/health`; `POST /admin/relay-faults`. Consumer: `GET /replica/snapshot`,
`/replica/export`, `/deliveries`, `/dead-letters`, `/stats`, `/health`, `/resync`;
`POST /verify`, `/resync`, `/admin/variant`. Both: `POST /admin/crash-points`.

Every failure (connection, status, malformed body) raises `ServiceCallError` naming the
URL, so a caller handles one exception type whatever went wrong.

A client presents `token` on every call (harness/contract/grants.py): the harness's own
clients hold the admin token, so they read everything and may use the control endpoints.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from harness.contract.grants import header
from harness.errors import SetupError

PAGE = 10_000


class ServiceCallError(SetupError):
    """A call to a service's HTTP API failed (unreachable, an error status, a bad body)."""


class ServiceClient:
    def __init__(self, base_url: str, timeout_s: float = 10.0, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout_s,
                                 headers=header(token) if token else None)

    def close(self) -> None:
        self.http.close()

    # -- plumbing ----------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              timeout_s: float | None = None, **params: Any) -> httpx.Response:
        try:
            response = self.http.request(
                method, path, params=params or None, json=body,
                timeout=timeout_s if timeout_s is not None else httpx.USE_CLIENT_DEFAULT)
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            text = exc.response.text[:300]
            raise ServiceCallError(f"{method} {self.base_url}{path} answered "
                                   f"{exc.response.status_code}: {text}") from exc
        except httpx.HTTPError as exc:
            raise ServiceCallError(f"cannot {method} {self.base_url}{path}: "
                                   f"{type(exc).__name__}: {exc}") from exc
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        response = self._call("GET", path, **params)
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceCallError(f"GET {self.base_url}{path}: not JSON: {exc}") from exc

    def post_json(self, path: str, body: dict[str, Any],
                  timeout_s: float | None = None) -> Any:
        response = self._call("POST", path, body, timeout_s)
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceCallError(f"POST {self.base_url}{path}: not JSON: {exc}") from exc

    def ndjson(self, path: str) -> list[dict[str, Any]]:
        text = self._call("GET", path).text
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise ServiceCallError(f"GET {self.base_url}{path}: bad NDJSON: {exc}") from exc

    def paged(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of a `?after=&limit=` listing, following `key` of the last item."""
        items: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self.get_json(path, after=after, limit=PAGE)
            if not page:
                return items
            items.extend(page)
            after = page[-1][key]

    # -- both services -------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return dict(self.get_json("/health"))

    def arm_crash_point(self, point: str, after_hits: int) -> dict[str, Any]:
        return dict(self.post_json("/admin/crash-points",
                                   {"point": point, "after_hits": after_hits}))


class PublisherClient(ServiceClient):
    def snapshot(self) -> dict[str, Any]:
        """count, categories, hash and the outbox high-water mark."""
        return dict(self.get_json("/snapshot"))

    def export(self) -> tuple[int, list[dict[str, Any]]]:
        """(high-water mark, every live row), consistent with each other."""
        lines = self.ndjson("/export")
        if not lines or "high_water_mark" not in lines[0]:
            raise ServiceCallError(f"GET {self.base_url}/export: no high-water mark header")
        return int(lines[0]["high_water_mark"]), lines[1:]

    def rows(self) -> list[dict[str, Any]]:
        return self.export()[1]

    def events(self, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """The outbox from sequence `after` on: all of it, or one page of `limit`."""
        if limit is not None:
            return list(self.get_json("/events", after=after, limit=limit))
        items = self.paged("/events", "sequence")
        return [e for e in items if e["sequence"] > after]

    def relay_faults(self, drop_next: int = 0, corrupt_next: int = 0) -> dict[str, Any]:
        return dict(self.post_json("/admin/relay-faults",
                                   {"drop_next": drop_next, "corrupt_next": corrupt_next}))


class ConsumerClient(ServiceClient):
    def snapshot(self) -> dict[str, Any]:
        return dict(self.get_json("/replica/snapshot"))

    def rows(self) -> list[dict[str, Any]]:
        return self.ndjson("/replica/export")

    def stats(self) -> dict[str, Any]:
        return dict(self.get_json("/stats"))

    def deliveries(self) -> list[dict[str, Any]]:
        """The consumer's own log of every delivery and its outcome (testimony)."""
        return self.paged("/deliveries", "id")

    def dead_letters(self, limit: int = 100_000) -> list[dict[str, Any]]:
        return list(self.get_json("/dead-letters", limit=limit))

    def verify(self, bisect: bool = False, sample: int = 0,
               timeout_s: float = 60.0) -> dict[str, Any]:
        return dict(self.post_json("/verify", {"bisect": bisect, "sample": sample},
                                   timeout_s))

    def resync(self, ids: list[int] | None = None, full: bool = False,
               timeout_s: float = 120.0) -> dict[str, Any]:
        body: dict[str, Any] = {"full": True} if full else {"ids": list(ids or [])}
        return dict(self.post_json("/resync", body, timeout_s))

    def resync_history(self) -> list[dict[str, Any]]:
        return list(self.get_json("/resync"))

    def set_variant(self, variant: str) -> dict[str, Any]:
        return dict(self.post_json("/admin/variant", {"variant": variant}))
