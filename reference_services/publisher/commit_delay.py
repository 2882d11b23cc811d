"""A fault the publisher can be told to commit (POST /admin/commit-delay), for the scenario
outbox_commit_order: the next N writes hold their transaction open `hold_s` seconds after
inserting their outbox row, before committing, one at a time (a write that arrives while
another is held goes through). Concurrent writes meanwhile take higher sequence numbers
and commit first, so outbox rows become visible out of sequence order,
as they do on any database that runs writers concurrently (PostgreSQL) under a slow
commit, a lock wait or a descheduled thread. Nothing is lost or changed: every held write
commits and is answered as usual.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify

from reference_services.common.http import json_body, json_error

# Long enough for a full relay poll (0.2 s) to run while a row is held, short enough that
# the load goes on.
MAX_HOLD_S = 10.0


@dataclass
class CommitDelay:
    remaining: int = 0
    hold_s: float = 0.0
    held: int = 0  # transactions held so far
    # Higher-numbered outbox rows that committed while a held one waited, summed: the
    # evidence that rows became visible out of sequence order.
    overtaken: int = 0
    _holding: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, count: int, hold_s: float) -> None:
        with self._lock:
            self.remaining, self.hold_s = max(0, count), hold_s

    def hold(self, committed_after: Callable[[], int]) -> None:
        """Called inside a write's transaction, after its outbox insert;
        `committed_after()` counts the committed rows numbered above its own."""
        if not self.remaining:  # unarmed: no lock taken on the write path
            return
        with self._lock:
            if self.remaining <= 0 or self._holding:
                return
            self.remaining -= 1
            self.held += 1
            self._holding = True
            hold_s = self.hold_s
        try:
            time.sleep(hold_s)
            overtaken = committed_after()
        finally:
            with self._lock:
                self._holding = False
        with self._lock:
            self.overtaken += overtaken

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"remaining": self.remaining, "hold_s": self.hold_s, "held": self.held,
                    "overtaken": self.overtaken}


def add_commit_delay_routes(app: Flask, delay: CommitDelay) -> None:
    @app.post("/admin/commit-delay")
    def arm_commit_delay() -> Any:
        body = json_body()
        count, hold_s = body.get("count", 0), body.get("hold_s", 0.0)
        if isinstance(count, bool) or not isinstance(count, int) \
                or isinstance(hold_s, bool) or not isinstance(hold_s, int | float) \
                or not 0 <= hold_s <= MAX_HOLD_S:
            return json_error(400, f"give count (an integer) and hold_s (0 to {MAX_HOLD_S})")
        delay.arm(count, float(hold_s))
        return jsonify(delay.state())

    @app.get("/admin/commit-delay")
    def commit_delay_state() -> Any:
        return jsonify(delay.state())
