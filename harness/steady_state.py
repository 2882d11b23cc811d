"""The steady-state hypothesis (Chaos Toolkit's term): before the first fault, show that
the system replicates, so a system that never worked errors as set-up instead of yielding
findings, and every fault is judged against a system that was keeping up.

The hypothesis: every event the publisher had written when the check began is processed
by each consumer that has been subscribed from the start, within `WAIT_S`. It waits for a
fixed target instead of bounding the lag at one instant, so a slow moment on a loaded
machine cannot flake it; a consumer that does not keep up for `WAIT_S` is not replicating.

It reads the consumer's delivery log (any processing outcome counts) and deliberately not
the replica's content: a replica that holds wrong values, or a log that lies about what
happened to an event, is a finding for the checks, not a set-up problem, so it must not
turn a scenario that should fail into one that errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.contract.client import PAGE, ConsumerClient
from harness.contract.outcomes import PROCESSED
from harness.errors import HarnessError

# How long consumers may take to process what was written before the check: generous,
# since only a system that does not replicate at all should miss it.
WAIT_S = 10.0
POLL_S = 0.1

Events = Sequence[dict[str, Any]]


@dataclass(frozen=True)
class SteadyState:
    ok: bool
    details: str
    events_written: int  # the target: events the publisher held when the check began
    caught_up_s: dict[str, float] = field(default_factory=dict)  # per consumer that did
    unprocessed: dict[str, int] = field(default_factory=dict)  # per consumer that did not

    def record(self) -> dict[str, Any]:
        """The history.jsonl record (kind "steady_state")."""
        return {"ok": self.ok, "details": self.details,
                "events_written": self.events_written,
                "caught_up_s": {k: round(v, 3) for k, v in self.caught_up_s.items()},
                "unprocessed": self.unprocessed}


def not_reached(before: str, details: str) -> str:
    """The error a scenario records when the hypothesis fails (also rebuilt offline from
    the history record by `harness check`)."""
    return f"steady state not reached {before}: {details}"


def unprocessed(written: Events, processed: set[str]) -> list[dict[str, Any]]:
    """The written events a consumer has not processed yet, in publication order."""
    return sorted((e for e in written if e["event_id"] not in processed),
                  key=lambda e: int(e["sequence"]))


def _describe(event: dict[str, Any]) -> str:
    return f"seq {event['sequence']} ({event['type']} product {event['aggregate_id']} " \
           f"v{event['version']})"


def prove(written: Callable[[], Events], logs: Mapping[str, Callable[[], set[str]]],
          wait_s: float = WAIT_S, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> SteadyState:
    """Poll until every consumer in `logs` has processed every event `written()` returned
    at the first call that returned any (at least one event must exist, so the hypothesis
    is never shown by an empty system), or until `wait_s` has passed.

    A HarnessError from a call (a service not answering) counts as "not yet"; if the wait
    ends on one, the failure names it.
    """
    started = clock()
    target: Events = []
    caught_up: dict[str, float] = {}
    behind: dict[str, list[dict[str, Any]]] = {}
    last_error = ""
    while True:
        try:
            if not target:
                target = list(written())
            for name, log in logs.items():
                if name in caught_up or not target:
                    continue
                behind[name] = unprocessed(target, log())
                if not behind[name]:
                    caught_up[name] = clock() - started
            last_error = ""
        except HarnessError as exc:
            last_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if target and len(caught_up) == len(logs):
            return SteadyState(True, "; ".join(
                f"{name} processed all {len(target)} events the publisher had written "
                f"(up to seq {max(int(e['sequence']) for e in target)}) within "
                f"{caught_up[name]:.2f}s" for name in logs),
                len(target), caught_up)
        if clock() - started >= wait_s:
            return _failure(target, behind, caught_up, last_error, wait_s)
        sleep(POLL_S)


def _failure(target: Events, behind: Mapping[str, list[dict[str, Any]]],
             caught_up: Mapping[str, float], last_error: str, wait_s: float) -> SteadyState:
    if not target:
        why = f"the publisher had written no event after {wait_s:.0f}s"
    else:
        why = "; ".join(
            f"{name} processed {len(target) - len(missing)} of the {len(target)} events the "
            f"publisher had written, {wait_s:.0f}s later (first unprocessed: "
            f"{_describe(missing[0])})"
            for name, missing in behind.items() if name not in caught_up and missing)
    if last_error:
        why = f"{why}; last call failed: {last_error}" if why else last_error
    return SteadyState(False, why, len(target), dict(caught_up),
                       {name: len(missing) for name, missing in behind.items()
                        if name not in caught_up})


class ProcessedLog:
    """The event ids a consumer's delivery log records with a processing outcome, read
    incrementally (each call fetches only the entries logged since the previous one)."""

    def __init__(self, client: ConsumerClient) -> None:
        self.client = client
        self.after = 0
        self.ids: set[str] = set()

    def __call__(self) -> set[str]:
        while True:
            page = self.client.get_json("/deliveries", after=self.after, limit=PAGE)
            self.ids.update(d["event_id"] for d in page
                            if d.get("event_id") and d.get("outcome") in PROCESSED)
            if page:
                self.after = int(page[-1]["id"])
            if len(page) < PAGE:
                return self.ids
