"""Faults committed by the publisher's relay, armed over its admin API: it skips the next
N events (marks them sent, never publishes them), or sends the next N upserts with wrong
but valid-looking values. Only an integrity check can notice either."""

from __future__ import annotations

import time
from typing import Any

import httpx

from harness.contract.grants import header
from harness.errors import FaultError
from harness.faults.base import Evidence, Fault
from harness.runtime.base import Component


class RelayMisbehaves(Fault):
    slows_replication = False

    def __init__(self, publisher: Component, what: str, count: int,
                 admin_token: str) -> None:
        if what not in ("drop", "corrupt"):
            raise ValueError(f"unknown relay fault {what!r}")
        self.publisher = publisher
        self.admin_token = admin_token
        self.what = what
        self.count = count
        self.name = f"relay_{what}:{count}"
        self.corrupts_data = what == "corrupt"
        self._state: dict[str, Any] = {}

    def _call(self, method: str, body: dict[str, int] | None = None) -> dict[str, Any]:
        url = self.publisher.endpoint().http_url() + "/admin/relay-faults"
        try:
            response = httpx.request(method, url, json=body,
                                     headers=header(self.admin_token), timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise FaultError(f"publisher relay fault {self.what}: {exc}") from exc
        data: dict[str, Any] = response.json()
        return data

    def inject(self) -> None:
        key = "drop_next" if self.what == "drop" else "corrupt_next"
        self._call("POST", {key: self.count})

    def heal(self) -> None:
        if self.publisher.is_running():
            self._state = self._call("POST", {"drop_next": 0, "corrupt_next": 0})

    def evidence(self) -> Evidence:
        done = len(self._state.get("dropped" if self.what == "drop" else "corrupted", []))
        return Evidence(done > 0, f"relay {'dropped' if self.what == 'drop' else 'corrupted'} "
                                  f"{done} of {self.count} events")

    def details(self) -> dict[str, Any]:
        return {"relay_fault": self._state, "corrupts_data": self.corrupts_data}


class ConsumerBug(Fault):
    """A defect deployed to the consumer (variant truncate_names: names cut to 8
    characters in every write); heal() deploys the fix. Rows written meanwhile stay wrong
    until a resync, which is what the scenario must show."""

    slows_replication = False
    corrupts_data = True

    def __init__(self, consumer: Component, admin_token: str,
                 variant: str = "truncate_names") -> None:
        self.consumer = consumer
        self.admin_token = admin_token
        self.variant = variant
        self.name = f"consumer_bug:{variant}"
        self._deployed = False
        self._fixed = False

    def _set(self, variant: str) -> None:
        url = self.consumer.endpoint().http_url() + "/admin/variant"
        try:
            httpx.post(url, json={"variant": variant}, headers=header(self.admin_token),
                       timeout=5.0).raise_for_status()
        except httpx.HTTPError as exc:
            raise FaultError(f"cannot set consumer variant {variant}: {exc}") from exc

    def inject(self) -> None:
        self._set(self.variant)
        self._deployed = True

    def heal(self) -> None:
        if self._deployed and not self._fixed and self.consumer.is_running():
            self._set("none")
            self._fixed = True

    def evidence(self) -> Evidence:
        return Evidence(self._deployed and self._fixed,
                        f"{self.variant} deployed, then fixed" if self._fixed
                        else f"{self.variant} deployed={self._deployed}, fixed={self._fixed}")

    def details(self) -> dict[str, Any]:
        return {"corrupts_data": self.corrupts_data}


class DataLossWhileDown(Fault):
    """The broker loses a consumer's queued events while that consumer is down: stop it,
    let a backlog build, purge (or delete) its queue, and start it again on heal."""

    slows_replication = False  # the lost events never arrive: lag cannot measure them

    def __init__(self, consumer: Component, destroy: Fault, backlog_s: float) -> None:
        self.consumer = consumer
        self.destroy = destroy
        self.backlog_s = backlog_s
        self.name = f"data_loss_while_down:{destroy.name}"

    def inject(self) -> None:
        self.consumer.stop()
        time.sleep(self.backlog_s)
        self.destroy.inject()

    def heal(self) -> None:
        if not self.consumer.is_running():
            self.consumer.start()

    def evidence(self) -> Evidence:
        inner = self.destroy.evidence()
        return Evidence(inner.verified and self.consumer.is_running(),
                        f"consumer down {self.backlog_s:.1f}s; {inner.description}")
