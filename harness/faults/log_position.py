"""A consumer's stored position left before the start of the log it reads (Kafka's offset
reset): while the consumer is down, the broker loses the records it had not read yet, so
the offsets it stored point at records that no longer exist.

A correct consumer must notice when it resumes (an offset out of range, or a log that now
starts after its position) and report the loss instead of carrying on from wherever the
client resets it; its replica then needs a full resync. The evidence is the consumer's own
report, read from its /health: a loss nobody noticed is exactly the bug this fault is for.
"""

from __future__ import annotations

import time
from typing import Any

from harness.contract.client import ConsumerClient
from harness.errors import HarnessError
from harness.faults.base import Evidence, Fault
from harness.faults.publisher import DataLossWhileDown
from harness.runtime.base import Component

# How long a restarted consumer gets to resume and report the loss: its group join, then
# the check of each stored position against the log (a few seconds each on Tansu).
DETECT_TIMEOUT_S = 20.0


class PositionBeforeLog(Fault):
    """`lose` stops the consumer, lets a backlog build and makes the broker lose it (see
    DataLossWhileDown); heal starts the consumer, and the evidence waits until the
    consumer reports a data loss it found after that restart."""

    slows_replication = False  # the lost events never arrive: lag cannot measure them

    def __init__(self, consumer: Component, lose: DataLossWhileDown,
                 detect_timeout_s: float = DETECT_TIMEOUT_S) -> None:
        self.consumer = consumer
        self.lose = lose
        self.detect_timeout_s = detect_timeout_s
        self.name = f"position_before_log:{lose.destroy.name}"
        self._healed = False
        self.reported: list[dict[str, Any]] = []

    def inject(self) -> None:
        self.lose.inject()

    def heal(self) -> None:
        self.lose.heal()
        self._healed = True

    def _reports_since_restart(self) -> list[dict[str, Any]]:
        health = ConsumerClient(self.consumer.endpoint().http_url()).health()
        worker = health.get("worker", {})
        found = worker.get("data_loss", []) if isinstance(worker, dict) else []
        # Kept in the process's memory: the restarted process reports only what it found.
        return [dict(r) for r in found if isinstance(r, dict)]

    def evidence(self) -> Evidence:
        lost = self.lose.evidence()
        if not lost.verified or not self._healed:
            return Evidence(False, f"{lost.description}; the consumer was not restarted")
        deadline = time.monotonic() + self.detect_timeout_s
        last_error = ""
        while time.monotonic() < deadline:
            try:
                self.reported = self._reports_since_restart()
            except HarnessError as exc:  # still starting: not answering yet
                last_error = f" (last error: {exc})"
            if self.reported:
                kinds = sorted({str(r.get("kind")) for r in self.reported})
                partitions = sorted({str(r.get("partition")) for r in self.reported})
                return Evidence(True, f"{lost.description}; the consumer's /health reports "
                                      f"data loss ({', '.join(kinds)}) on partition(s) "
                                      f"{', '.join(partitions)}")
            time.sleep(0.25)
        return Evidence(False, f"{lost.description}; the consumer's /health reported no data "
                               f"loss within {self.detect_timeout_s:.0f}s of its restart: "
                               f"it resumed past records that no longer exist{last_error}")

    def details(self) -> dict[str, Any]:
        return {"data_loss_reported": self.reported}
