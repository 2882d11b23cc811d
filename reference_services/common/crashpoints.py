"""Named crash points: places in the relay and consumer where a test can make the process
die abruptly (SIGKILL to itself), at the worst possible moment.

Points are armed at run time (POST /admin/crash-points on the service) or at start-up
(env RCH_CRASH_POINTS="point@hits,..."), so any runtime (process or container) can use
them. Unarmed points cost one dict lookup.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from harness.contract.crash_points import POINTS

log = logging.getLogger(__name__)



class CrashPoints:
    def __init__(self) -> None:
        self._armed: dict[str, int] = {}
        self._lock = threading.Lock()

    def arm(self, point: str, after_hits: int = 1) -> None:
        if point not in POINTS:
            raise ValueError(f"unknown crash point {point!r}; known: {', '.join(sorted(POINTS))}")
        if after_hits < 0:
            raise ValueError("after_hits must be >= 0 (0 disarms)")
        with self._lock:
            if after_hits == 0:
                self._armed.pop(point, None)
            else:
                self._armed[point] = after_hits
        log.warning("crash point %s %s", point,
                    f"armed (after {after_hits} hits)" if after_hits else "disarmed")

    def arm_from_env(self, value: str) -> None:
        for item in filter(None, (part.strip() for part in value.split(","))):
            point, _, hits = item.partition("@")
            self.arm(point, int(hits or 1))

    def armed(self) -> dict[str, int]:
        with self._lock:
            return dict(self._armed)

    def hit(self, point: str) -> None:
        if not self._armed:
            return
        with self._lock:
            remaining = self._armed.get(point)
            if remaining is None:
                return
            if remaining > 1:
                self._armed[point] = remaining - 1
                return
        # Say it before dying: the harness reads this line as evidence the point was reached.
        print(f"crash point {point} reached: killing pid {os.getpid()}", file=sys.stderr,
              flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


CRASH_POINTS = CrashPoints()
if os.environ.get("RCH_CRASH_POINTS"):
    CRASH_POINTS.arm_from_env(os.environ["RCH_CRASH_POINTS"])
