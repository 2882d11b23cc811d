"""Faults the relay can be told to commit (POST /admin/relay-faults), for scenarios that
need a publisher which skips events or sends valid-looking wrong data.

- drop_next=N: the next N outbox rows are marked sent without being published;
- corrupt_next=N: the next N ProductUpserted events go out with wrong values (a reversed
  name, a price off by one) that pass every schema check.
The ids affected are kept, so a scenario can compare what integrity checks found with what
truly diverged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from harness.contract import envelope as env


@dataclass
class RelayFaults:
    drop_next: int = 0
    corrupt_next: int = 0
    dropped: list[dict[str, Any]] = field(default_factory=list)
    corrupted: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, drop_next: int, corrupt_next: int) -> None:
        with self._lock:
            self.drop_next, self.corrupt_next = max(0, drop_next), max(0, corrupt_next)

    def take_drops(self, count: int) -> int:
        with self._lock:
            taken = min(self.drop_next, count)
            self.drop_next -= taken
            return taken

    def maybe_corrupt(self, envelope: env.Envelope) -> env.Envelope:
        if envelope.type != env.PRODUCT_UPSERTED:
            return envelope
        with self._lock:
            if self.corrupt_next <= 0:
                return envelope
            self.corrupt_next -= 1
            self.corrupted.append({"aggregate_id": envelope.aggregate_id,
                                   "version": envelope.version, "sequence": envelope.sequence})
        payload = {**envelope.payload, "name": envelope.payload["name"][::-1],
                   "price": envelope.payload["price"] + 1}
        return env.Envelope(**{**envelope.__dict__, "payload": payload})

    def record_drops(self, envelopes: list[env.Envelope]) -> None:
        with self._lock:
            self.dropped.extend({"aggregate_id": e.aggregate_id, "version": e.version,
                                 "sequence": e.sequence, "type": e.type} for e in envelopes)

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"drop_next": self.drop_next, "corrupt_next": self.corrupt_next,
                    "dropped": list(self.dropped), "corrupted": list(self.corrupted)}
