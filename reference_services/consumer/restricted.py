"""The publisher's answers about restricted fields, over the consumer's credential
(harness/contract/grants.py): what this consumer may read, and the values events withheld."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from harness.contract.grants import WITHHELD
from reference_services.consumer.applier import ResyncUnavailable


class PublisherRestricted:
    """`RestrictedValues` (applier.py) through the publisher's API."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        # Asked once: a consumer's grants are the publisher's configuration for the run.
        self._granted: frozenset[str] | None = None

    def granted(self) -> frozenset[str]:
        if self._granted is None:
            try:
                response = self.client.get("/grants/mine", timeout=5.0)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise ResyncUnavailable(f"cannot ask the publisher for this consumer's "
                                        f"grants: {exc}") from exc
            self._granted = frozenset(response.json()["fields"])
        return self._granted

    def values(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        try:
            response = self.client.post("/events/restricted",
                                        json={"event_ids": list(event_ids)}, timeout=30.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ResyncUnavailable(f"cannot fetch {len(event_ids)} events' restricted "
                                    f"values: {exc}") from exc
        values: dict[str, dict[str, Any]] = response.json()["values"]
        return values


def with_restricted(event: dict[str, Any]) -> dict[str, Any]:
    """An event of the publisher's GET /events with the withheld values it came with (the
    caller's `restricted`) put back into its payload, so applying it needs no further
    call; the fields still withheld stay named."""
    values = event.get("restricted") or {}
    withheld = event["payload"].get(WITHHELD)
    if not values or not isinstance(withheld, list):
        return event
    payload = {k: v for k, v in event["payload"].items() if k != WITHHELD}
    left = [f for f in withheld if f not in values]
    return {**event, "payload": {**payload, **values, **({WITHHELD: left} if left else {})}}
