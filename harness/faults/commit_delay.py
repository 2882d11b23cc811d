"""The publisher holds some write transactions open after their outbox insert (armed over
POST /admin/commit-delay), so concurrent writes with higher sequence numbers commit first:
outbox rows become visible out of sequence order. Only a database with concurrent writers
(PostgreSQL) can do this; a relay that reads "after the last sequence I sent" then skips
the rows committed late."""

from __future__ import annotations

from typing import Any

import httpx

from harness.contract.grants import header
from harness.errors import FaultError
from harness.faults.base import Evidence, Fault
from harness.runtime.base import Component


class CommitDelay(Fault):
    # Held events are late by the hold, a handful among hundreds: lag is no witness; the
    # publisher's count of rows that overtook them is.
    slows_replication = False

    def __init__(self, publisher: Component, count: int, hold_s: float,
                 admin_token: str) -> None:
        self.publisher = publisher
        self.admin_token = admin_token
        self.count = count
        self.hold_s = hold_s
        self.name = f"commit_delay:{count}x{hold_s:.1f}s"
        self._state: dict[str, Any] = {}
        # The publisher's counters are cumulative: this fault's share is what they grew.
        self._before: dict[str, Any] = {}

    def _call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = self.publisher.endpoint().http_url() + "/admin/commit-delay"
        try:
            response = httpx.request(method, url, json=body,
                                     headers=header(self.admin_token), timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise FaultError(f"publisher commit delay: {exc}") from exc
        data: dict[str, Any] = response.json()
        return data

    def inject(self) -> None:
        self._before = self._call("POST", {"count": self.count, "hold_s": self.hold_s})

    def heal(self) -> None:
        if self.publisher.is_running():
            # Disarm what is left; transactions being held finish their hold.
            self._state = self._call("POST", {"count": 0, "hold_s": self.hold_s})

    def evidence(self) -> Evidence:
        held, overtaken = (self._state.get(k, 0) - self._before.get(k, 0)
                           for k in ("held", "overtaken"))
        return Evidence(held > 0 and overtaken > 0,
                        f"the publisher held {held} of {self.count} write transactions "
                        f"{self.hold_s:.1f}s after their outbox insert; {overtaken} "
                        "higher-numbered outbox rows committed while they waited")

    def details(self) -> dict[str, Any]:
        return {"commit_delay": self._state}
