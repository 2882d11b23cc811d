"""Crash at a named point inside a service under test (names in
harness/contract/crash_points.py): arm it over the service's admin API, wait for the
process to die there, and restart it on heal."""

from __future__ import annotations

import signal

import httpx

from harness.contract.grants import header
from harness.errors import FaultError, WaitTimeout
from harness.faults.base import Evidence, Fault
from harness.runtime.base import Component
from harness.waiting import wait_until

ARMED_WAIT_S = 15.0


class CrashAtPoint(Fault):
    def __init__(self, component: Component, point: str, after_hits: int = 1,
                 admin_token: str = "") -> None:
        self.component = component
        self.admin_token = admin_token
        self.point = point
        self.after_hits = after_hits
        self.name = f"crash_point:{point}"
        self._status: int | None = None
        self._reached = False
        self._before = ""
        self._healed = False

    def _admin(self, after_hits: int) -> None:
        url = self.component.endpoint().http_url() + "/admin/crash-points"
        try:
            response = httpx.post(url, json={"point": self.point, "after_hits": after_hits},
                                  headers=header(self.admin_token), timeout=5.0)
        except httpx.HTTPError as exc:
            # A busy service can reach the point, and die, before its answer to "arm" is
            # written: a dead process here is the point working, not an error.
            if after_hits and self._dies_within(2.0):
                return
            raise FaultError(f"cannot arm {self.point} on {self.component.name}: {exc}") from exc
        if response.status_code != 200:
            raise FaultError(f"{self.component.name} refused crash point {self.point}: "
                             f"{response.text}")

    def _dies_within(self, timeout_s: float) -> bool:
        try:
            wait_until(lambda: not self.component.is_running(), timeout_s,
                       f"{self.component.name} to exit", interval_s=0.02)
        except WaitTimeout:
            return False
        return True

    def inject(self) -> None:
        self._before = self.component.identity
        self._admin(self.after_hits)
        if not self._dies_within(ARMED_WAIT_S):
            self._admin(0)  # not reached: the evidence says so; disarm it
            return
        self._reached = f"crash point {self.point} reached" in self.component.logs(200)
        self._status = self.component.kill()  # reaps it and reports the exit status

    def heal(self) -> None:
        if not self.component.is_running():
            self.component.start()
        self._healed = True

    def evidence(self) -> Evidence:
        died = self._status == -signal.SIGKILL
        verified = died and self._reached and self._healed
        if not self._reached:
            return Evidence(False, f"{self.component.name} never reached {self.point} "
                                   f"within {ARMED_WAIT_S:.0f}s")
        return Evidence(verified, f"{self.component.name} {self._before} died at "
                                  f"{self.point} (status {self._status}), "
                                  f"now {self.component.identity}")
