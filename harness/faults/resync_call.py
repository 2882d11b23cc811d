"""A resync asked of a consumer while the load runs (actions `resync_partial`,
`resync_full`).

Not a fault of the system: a repair path exercised under load, scheduled like a fault so
the checks see what came in through it. A partial resync asks for `count` ids drawn from
the source's id range (live, deleted or never written alike: each is a case the resync
handles); a full one replaces the replica with the export and catches up. The authorization
scenario uses both: a restricted value must not reach an unauthorized replica this way.
"""

from __future__ import annotations

import random
from typing import Any

from harness.contract.client import ConsumerClient, PublisherClient, ServiceCallError
from harness.faults.base import Evidence, Fault


class ResyncCall(Fault):
    slows_replication = False

    def __init__(self, consumer: ConsumerClient, publisher: PublisherClient, target: str,
                 full: bool, count: int, rng: random.Random) -> None:
        self.consumer = consumer
        self.publisher = publisher
        self.full = full
        self.count = count
        self.rng = rng
        self.name = f"resync_{'full' if full else 'partial'}:{target}"
        self.report: dict[str, Any] | None = None
        self.error = ""

    def inject(self) -> None:
        try:
            if self.full:
                self.report = self.consumer.resync(full=True)
            else:
                lo, hi = self.publisher.snapshot()["id_range"]
                ids = sorted(self.rng.sample(range(lo, hi), min(self.count, hi - lo)))
                self.report = self.consumer.resync(ids=ids)
        except ServiceCallError as exc:
            # Recorded, not raised: the missing evidence fails fault_was_active.
            self.error = str(exc)

    def heal(self) -> None:
        self.consumer.close()
        self.publisher.close()

    def evidence(self) -> Evidence:
        if self.report is None:
            return Evidence(False, f"{self.name} failed: {self.error or 'never asked'}")
        return Evidence(True, f"{self.name}: the consumer's report says "
                              f"{self.report.get('fetched')} rows fetched, "
                              f"{self.report.get('changed')} changed, "
                              f"{self.report.get('removed')} removed")

    def details(self) -> dict[str, Any]:
        return {"resync_report": self.report} if self.report is not None else {}
