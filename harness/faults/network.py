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
        total_ms = delta.get("latency_ms_total", 0.0)
        avg_ms = total_ms / runs if runs else 0.0
        # The counters cover every call that ended between inject and heal, including one
        # that began before the toxic (without its latency): two calls in a 2 s window, one
        # of them such, halve the average (seen: 211 ms per call under a 300 ms latency).
        # So for a delay added once per call (latency), the time the calls gained over what
        # each took before the fault counts too: a call made wholly under the toxic adds it
        # all, calls without it add nothing. (A throttle slows every byte: judged per call.)
        before_runs = self._before.get("runs", 0.0)
        usual_ms = self._before.get("latency_ms_total", 0.0) / before_runs \
            if before_runs and self.delays_each_call_once() else None
        added_ms = total_ms - runs * usual_ms if usual_ms is not None else 0.0
        expected = self.expected_client_latency_ms()
        felt = failures > 0 or avg_ms >= expected or added_ms >= expected
        seen = f"client saw {failures:.0f} failures, {avg_ms:.0f} ms per call"
        if usual_ms is not None:
            seen += (f" over {runs:.0f} calls, {added_ms:.0f} ms more in all than at the "
                     f"{usual_ms:.0f} ms per call before it")
        return felt, seen

    def expected_client_latency_ms(self) -> float:
        return float("inf")

    def delays_each_call_once(self) -> bool:
        """Whether the fault adds one fixed delay to each call (not a per-byte slowdown)."""
        return False

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

    def delays_each_call_once(self) -> bool:
        return self.toxic_type == "latency"


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
