"""A full resync while events flow, with a real gap behind it.

`FullResyncWithLoss` makes the events just after a full resync's export reachable only
through its catch-up (`GET /events?after=H`), the path no other fault exercises: the
late joiner's queue and the resync after a data loss both hand those events over through
the queue as well.

1. The consumer's events are diverted to a hold queue (it stops receiving) and whatever
   waits in its own queue is purged: its backlog is lost.
2. After `backlog_s`, a full resync is triggered (`POST /resync {"full": true}`) while a
   latency toxic of `export_delay_s` holds every answer the publisher sends the consumer:
   the export leaves the publisher at once (its high-water mark H is read then) but
   reaches the consumer only when the toxic goes.
3. Halfway through that delay the harness reads the publisher's high-water mark itself:
   the boundary B. H was read before it; the catch-up's first read comes after it (the
   export's answer, which it waits for, is still held). So a correct catch-up delivers
   every event up to B.
4. The toxic is removed and the held events are released, except those with a sequence
   up to B, which are deleted: events up to H are in the export; those in (H, B] can now
   reach the replica only through the catch-up. Events after B are handed over through
   the queue, while the catch-up may still be running.

Evidence is the harness's own: the held events it discarded (with their sequences), how
many lay above the H the consumer reported, and whether H fell between the high-water
mark read before the resync and B, as it must.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from harness.brokers.base import BrokerAdapter, Discarded
from harness.contract import envelope as env
from harness.contract.client import ConsumerClient, PublisherClient, ServiceCallError
from harness.faults.base import Evidence, Fault
from harness.links import Links

TOXIC_NAME = "chaos_resync_export_delay"
# How long heal() waits for a resync still running (its own HTTP timeout is longer).
RESYNC_JOIN_S = 120.0


def sequence_of(body: bytes) -> int | None:
    """The outbox sequence an event body carries, or None when it is not an event."""
    try:
        return env.decode(body).sequence
    except env.EnvelopeError:
        return None


class FullResyncWithLoss(Fault):
    # The consumer keeps applying through the resync; what matters is what it lost, which
    # the evidence counts. Lag cannot show it.
    slows_replication = False

    def __init__(self, adapter: BrokerAdapter, consumer_name: str, consumer: ConsumerClient,
                 publisher: PublisherClient, links: Links, link: str, backlog_s: float,
                 export_delay_s: float) -> None:
        self.adapter = adapter
        self.consumer_name = consumer_name
        self.consumer = consumer
        self.publisher = publisher
        self.links = links
        self.link = link
        self.backlog_s = backlog_s
        self.export_delay_s = export_delay_s
        self.name = f"full_resync_with_loss:{consumer_name}"
        self.purged = 0
        self.mark_before = 0  # the publisher's high-water mark just before the resync
        self.boundary: int | None = None  # B: events up to it are discarded from the queue
        self.boundary_in_time = False  # B was read while the export's answer was held
        self.outcome: Discarded | None = None
        self.report: dict[str, Any] | None = None
        self.error = ""
        self.diverted_s = 0.0
        self._diverted_at = 0.0
        self._toxic = False
        self._thread: threading.Thread | None = None

    # -- inject / heal ---------------------------------------------------------------------
    def inject(self) -> None:
        self.adapter.divert(self.consumer_name)
        self._diverted_at = time.monotonic()
        self.purged = self.adapter.purge(self.consumer_name)
        time.sleep(self.backlog_s)
        self.mark_before = int(self.publisher.snapshot()["high_water_mark"])
        self.links.add_toxic(self.link, name=TOXIC_NAME, type="latency", stream="downstream",
                             toxicity=1.0,
                             attributes={"latency": round(self.export_delay_s * 1000),
                                         "jitter": 0})
        self._toxic = True
        requested = time.monotonic()
        self._thread = threading.Thread(target=self._resync, name="full-resync", daemon=True)
        self._thread.start()
        time.sleep(self.export_delay_s / 2)
        self.boundary = int(self.publisher.snapshot()["high_water_mark"])
        self.boundary_in_time = time.monotonic() - requested < self.export_delay_s
        self._remove_toxic()
        boundary = self.boundary
        self.outcome = self.adapter.release_discarding(
            self.consumer_name,
            lambda body: (seq := sequence_of(body)) is not None and seq <= boundary)
        self.diverted_s = time.monotonic() - self._diverted_at
        self._thread.join(RESYNC_JOIN_S)

    def _resync(self) -> None:
        try:
            self.report = self.consumer.resync(full=True)
        except ServiceCallError as exc:
            self.error = str(exc)

    def _remove_toxic(self) -> None:
        if self._toxic:
            self.links.remove_toxic(self.link, TOXIC_NAME)
            self._toxic = False

    def heal(self) -> None:
        """Whatever inject() did not finish: the toxic goes, held events are all handed
        over (none discarded), and a running resync is waited for."""
        self._remove_toxic()
        if self._diverted_at:
            self.adapter.release(self.consumer_name, "fifo")
        if self._thread is not None:
            self._thread.join(RESYNC_JOIN_S)
        if self._thread is None or not self._thread.is_alive():
            self.consumer.close()
            self.publisher.close()

    # -- what happened ---------------------------------------------------------------------
    @property
    def high_water_mark(self) -> int | None:
        """H, as the consumer's resync report gives it."""
        if self.report is None or self.report.get("high_water_mark") is None:
            return None
        return int(self.report["high_water_mark"])

    def _discarded(self) -> list[env.Envelope]:
        bodies = self.outcome.bodies if self.outcome is not None else ()
        return [env.decode(body) for body in bodies]

    def details(self) -> dict[str, Any]:
        mark = self.high_water_mark
        lost = self._discarded()
        return {
            # The consumer's own report of the resync: its high-water mark bounds what the
            # resync excuses (events above it must still be processed, once).
            "resync_report": self.report,
            "lost_from_queue": {
                "purged": self.purged,
                "mark_before_resync": self.mark_before,
                "high_water_mark": mark,
                "boundary": self.boundary,
                "released": self.outcome.released if self.outcome is not None else 0,
                "discarded": [{"sequence": e.sequence, "event_id": e.event_id,
                               "aggregate_id": e.aggregate_id, "version": e.version}
                              for e in lost],
                "above_mark": [e.sequence for e in lost
                               if mark is not None and e.sequence > mark],
            },
        }

    def evidence(self) -> Evidence:
        mark = self.high_water_mark
        lost = sorted(e.sequence for e in self._discarded())
        above = [s for s in lost if mark is not None and s > mark]
        released = self.outcome.released if self.outcome is not None else 0
        held = (f"{self.consumer_name} diverted {self.diverted_s:.2f}s, {self.purged} "
                f"queued messages purged; {len(lost)} held events discarded"
                + (f" (sequences {lost[0]}..{lost[-1]})" if lost else "")
                + f", {released} released")
        if mark is None:
            return Evidence(False, f"{held}; the full resync gave no high-water mark: "
                                   f"{self.error or self.report}")
        caught_up = (self.report or {}).get("caught_up_events")
        problems = []
        if not self.mark_before <= mark <= (self.boundary or 0):
            problems.append(f"H={mark} is not between the publisher's high-water mark "
                            f"{self.mark_before} before the resync and the boundary "
                            f"{self.boundary} read after its export")
        if not self.boundary_in_time:
            problems.append(f"the boundary was read after the {self.export_delay_s:.1f}s "
                            "the export's answer was held: the catch-up may have started "
                            "before it")
        if not above:
            problems.append(f"no discarded event lay above H={mark}")
        summary = (f"{held}; {len(above)} of them above the export's high-water mark "
                   f"H={mark}"
                   + (f" (sequences {above[0]}..{above[-1]}), reachable only through the "
                      "catch-up" if above else "")
                   + f"; the consumer reports {caught_up} events caught up")
        return Evidence(not problems, "; ".join([summary, *problems]))
