"""Version consistency during the run: a consumer's replica sampled from its database file
while the load and the faults run.

A thread reads the whole replica table every `interval_s` and keeps only the rows that
changed since the previous read (the first read keeps every row), each stamped with the
moment its read began: the database showed that state from then until the next change.
The read times are kept too, so a checker knows when a row was seen unchanged.

Bounded in time and in count: it stops by itself after `max_duration_s`, or once
`max_changes` rows were kept (then the status says so and the checkers judge only what was
sampled). A read slower than the interval stretches the interval to the read's own
duration, so a big replica never turns the sampler into a busy loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from harness.contract import replica
from harness.errors import HarnessError

INTERVAL_S = 0.25
MAX_DURATION_S = 900.0
MAX_CHANGES = 200_000
STOP_JOIN_S = 2.0

ReadReplica = Callable[[], list[dict[str, Any]]]


class ReplicaSampler:
    def __init__(self, read: ReadReplica, interval_s: float = INTERVAL_S,
                 max_duration_s: float = MAX_DURATION_S, max_changes: int = MAX_CHANGES,
                 clock: Callable[[], float] = time.time) -> None:
        self.read = read
        self.interval_s = interval_s
        self.max_duration_s = max_duration_s
        self.max_changes = max_changes
        self.clock = clock  # wall clock: comparable with the services' timestamps
        self._changes: list[dict[str, Any]] = []
        self._reads: list[float] = []
        self._errors = 0
        self._last_error = ""
        self._stopped_because = ""
        self._slowest_read_s = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replica-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Idempotent and bounded: a read in progress is left to finish on its own."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_JOIN_S)

    def _run(self) -> None:
        began = time.monotonic()
        previous: dict[Any, tuple[Any, ...]] = {}
        while not self._stop.is_set():
            if time.monotonic() - began > self.max_duration_s:
                self._stopped_because = f"ran {self.max_duration_s:.0f}s"
                return
            at = self.clock()
            read_began = time.monotonic()
            try:
                rows = self.read()
            except HarnessError as exc:
                self._errors += 1
                self._last_error = str(exc)
                self._stop.wait(self.interval_s)
                continue
            cost = time.monotonic() - read_began
            with self._lock:
                self._slowest_read_s = max(self._slowest_read_s, cost)
                self._reads.append(at)
                for row in rows:
                    seen = tuple(row[c] for c in replica.COLUMNS)
                    if previous.get(row[replica.KEY]) == seen:
                        continue
                    previous[row[replica.KEY]] = seen
                    self._changes.append({**row, "t": at})
                if len(self._changes) >= self.max_changes:
                    self._stopped_because = f"kept {self.max_changes} changed rows"
                    return
            self._stop.wait(max(self.interval_s - cost, cost))

    def changes(self) -> list[dict[str, Any]]:
        """Each row as it changed: the replica's columns plus `t`, when its read began."""
        with self._lock:
            return list(self._changes)

    def reads(self) -> list[float]:
        """When each successful read began, in order."""
        with self._lock:
            return list(self._reads)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"reads": len(self._reads), "changes": len(self._changes),
                    "errors": self._errors, "last_error": self._last_error,
                    "stopped_because": self._stopped_because,
                    "interval_s": self.interval_s,
                    "slowest_read_ms": round(self._slowest_read_s * 1000, 1)}
