"""Network faults on a named link, through the Toxiproxy API.

inject() adds a toxic (or disables the link) and confirms it through the API; heal()
removes it and is idempotent. Whether the affected client felt it is judged afterwards
from recorded replication lag (harness/checkers/recovery.py), or from the client's own
counters where a link carries no replication traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from harness.faults.base import Evidence, Fault
from harness.links import Links

ClientProbe = Callable[[], Mapping[str, float]]


class _LinkFault(Fault):
    def __init__(self, links: Links, link: str, probe: ClientProbe | None) -> None:
        self.links = links
        self.link = link
        self.probe = probe
        self._confirmed = False
        self._before: Mapping[str, float] = {}
        self._after: Mapping[str, float] = {}

    def _snapshot(self) -> Mapping[str, float]:
        return self.probe() if self.probe is not None else {}

    def _client_saw_it(self) -> tuple[bool | None, str]:
        """(felt, description) from the client's counters, or (None, "") without a probe."""
        if self.probe is None or not self._before or not self._after:
            return None, ""
        delta = {k: self._after.get(k, 0.0) - self._before.get(k, 0.0) for k in self._before}
        failures = delta.get("failures", 0.0)
        runs = delta.get("runs", 0.0)
        avg_ms = delta.get("latency_ms_total", 0.0) / runs if runs else 0.0
        felt = failures > 0 or avg_ms >= self.expected_client_latency_ms()
        return felt, f"client saw {failures:.0f} failures, {avg_ms:.0f} ms per call"

    def expected_client_latency_ms(self) -> float:
        return float("inf")

    def evidence(self) -> Evidence:
        felt, seen = self._client_saw_it()
        verified = self._confirmed and felt is not False
        base = f"{self.name} confirmed by the proxy API" if self._confirmed \
            else f"{self.name} not confirmed by the proxy API"
        return Evidence(verified, f"{base}; {seen}" if seen else base)


class ToxicFault(_LinkFault):
    """One toxic (latency, bandwidth, slicer, reset_peer, timeout, limit_data, ...)."""

    def __init__(self, links: Links, link: str, toxic_type: str, stream: str,
                 attributes: Mapping[str, Any], toxicity: float = 1.0,
                 probe: ClientProbe | None = None) -> None:
        super().__init__(links, link, probe)
        self.toxic_type = toxic_type
        self.stream = stream
        self.attributes = dict(attributes)
        self.toxicity = toxicity
        self.toxic_name = f"chaos_{toxic_type}_{stream}"
        self.name = f"{toxic_type}:{link}:{stream}"

    def inject(self) -> None:
        self._before = self._snapshot()
        self.links.add_toxic(self.link, name=self.toxic_name, type=self.toxic_type,
                             stream=self.stream, toxicity=self.toxicity,
                             attributes=self.attributes)
        self._confirmed = self.toxic_name in self.links.toxic_names(self.link)

    def heal(self) -> None:
        self.links.remove_toxic(self.link, self.toxic_name)
        if self._before and not self._after:
            self._after = self._snapshot()

    def expected_client_latency_ms(self) -> float:
        if self.toxic_type == "latency":
            return 0.8 * float(self.attributes.get("latency", 0))
        return 100.0  # throttles (bandwidth, slicer) on a small request


class LinkDown(_LinkFault):
    """The link is cut: the proxy closes its listener and every connection through it."""

    def __init__(self, links: Links, link: str, probe: ClientProbe | None = None) -> None:
        super().__init__(links, link, probe)
        self.name = f"down:{link}"

    def inject(self) -> None:
        self._before = self._snapshot()
        self.links.set_enabled(self.link, False)
        self._confirmed = not self.links.is_enabled(self.link)

    def heal(self) -> None:
        self.links.set_enabled(self.link, True)
        if self._before and not self._after:
            self._after = self._snapshot()
