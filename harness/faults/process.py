"""Process faults: kill -9, graceful stop, pause/resume, and a crash in the middle of a
batch. They work on any Component, so they run unchanged on processes or containers."""

from __future__ import annotations

import signal
import time

from harness.faults.base import Evidence, Fault
from harness.runtime.base import Component

# How long a freshly SIGSTOPped process may take to show as stopped.
STOP_OBSERVE_TIMEOUT_S = 1.0


def process_state(component: Component) -> str | None:
    """The component's run state, whatever runs it ("T": stopped or frozen), or None when
    it cannot be read (see Component.state)."""
    return component.state()


class KillProcess(Fault):
    """SIGKILL the component; heal restarts it."""

    def __init__(self, component: Component) -> None:
        self.component = component
        self.name = f"kill:{component.name}"
        self._status: int | None = None
        self._before = ""
        self._healed = False

    def inject(self) -> None:
        self._before = self.component.identity
        self._status = self.component.kill()

    def heal(self) -> None:
        if not self.component.is_running():
            self.component.start()
        self._healed = True

    def evidence(self) -> Evidence:
        killed = self._status == -signal.SIGKILL
        restarted = self._healed and self.component.identity != self._before
        return Evidence(killed and restarted,
                        f"{self.component.name} {self._before} exited with status "
                        f"{self._status}, now {self.component.identity}")


class StopProcess(KillProcess):
    """Graceful stop (SIGTERM, then SIGKILL after the timeout); heal starts it again."""

    def __init__(self, component: Component) -> None:
        super().__init__(component)
        self.name = f"stop:{component.name}"

    def inject(self) -> None:
        self._before = self.component.identity
        self.component.stop()
        self._status = -signal.SIGKILL if not self.component.is_running() else None

    def evidence(self) -> Evidence:
        restarted = self._healed and self.component.identity != self._before
        return Evidence(restarted, f"{self.component.name} stopped ({self._before}), "
                                   f"now {self.component.identity}")


class PauseProcess(Fault):
    """SIGSTOP: the process keeps its sockets open but answers nothing.

    Evidence is the kernel's word, not the signal's delivery: the process must be seen
    stopped (state "T") right after the pause and still just before the resume."""

    def __init__(self, component: Component) -> None:
        self.component = component
        self.name = f"pause:{component.name}"
        self._paused_at = 0.0
        self._resumed_at = 0.0
        self._state_after_pause: str | None = None
        self._state_before_resume: str | None = None

    def inject(self) -> None:
        self.component.pause()
        self._paused_at = time.monotonic()
        deadline = self._paused_at + STOP_OBSERVE_TIMEOUT_S
        self._state_after_pause = process_state(self.component)
        while self._state_after_pause != "T" and time.monotonic() < deadline:
            time.sleep(0.01)
            self._state_after_pause = process_state(self.component)

    def heal(self) -> None:
        if self._paused_at and not self._resumed_at:
            self._state_before_resume = process_state(self.component)
        self.component.resume()
        if self._paused_at and not self._resumed_at:
            self._resumed_at = time.monotonic()

    def evidence(self) -> Evidence:
        held = self._resumed_at - self._paused_at if self._resumed_at else 0.0
        stopped = self._state_after_pause == "T" and self._state_before_resume == "T"
        return Evidence(held > 0 and stopped and self.component.is_running(),
                        f"{self.component.name} ({self.component.identity}) frozen for "
                        f"{held:.2f}s; process state {self._state_after_pause} after the "
                        f"pause, {self._state_before_resume} before the resume "
                        "(T: stopped)")


class CrashMidBatch(Fault):
    """Kill -9 a consumer while it is busy with a batch.

    Freezing it first lets a backlog build up; thawing it and killing it `delay_s` later
    lands the kill while it is working through that backlog, between receiving messages
    and acknowledging them: the moment where ack ordering decides whether data is lost.
    """

    def __init__(self, component: Component, backlog_s: float, delay_s: float) -> None:
        self.component = component
        self.backlog_s = backlog_s
        self.delay_s = delay_s
        self.name = f"crash_mid_batch:{component.name}"
        self._kill = KillProcess(component)

    def inject(self) -> None:
        self.component.pause()
        time.sleep(self.backlog_s)
        self.component.resume()
        time.sleep(self.delay_s)
        self._kill.inject()

    def heal(self) -> None:
        self.component.resume()
        self._kill.heal()

    def evidence(self) -> Evidence:
        inner = self._kill.evidence()
        return Evidence(inner.verified,
                        f"backlog {self.backlog_s:.2f}s, killed {self.delay_s * 1000:.0f}ms "
                        f"after thaw: {inner.description}")
