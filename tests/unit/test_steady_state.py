"""The steady-state hypothesis on fakes: a simulated clock, a scripted publisher outbox and
scripted consumer logs."""

from __future__ import annotations

from typing import Any

import pytest

from harness.contract.client import PAGE, ServiceCallError
from harness.steady_state import WAIT_S, ProcessedLog, not_reached, prove, unprocessed


def event(seq: int) -> dict[str, Any]:
    return {"event_id": f"e{seq}", "sequence": seq, "type": "StockAdjusted",
            "aggregate_id": str(seq % 7 + 1), "version": seq}


class Clock:
    """Time passes only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def log_catching_up(per_poll: int) -> Any:
    """A consumer that processes `per_poll` more events at each look."""
    seen = {"n": 0}

    def log() -> set[str]:
        seen["n"] += per_poll
        return {f"e{i}" for i in range(1, seen["n"] + 1)}
    return log


def test_holds_at_once_when_everything_written_was_processed() -> None:
    clock = Clock()
    outcome = prove(lambda: [event(1), event(2)], {"consumer": lambda: {"e1", "e2", "e9"}},
                    clock=clock, sleep=clock.sleep)
    assert outcome.ok and clock.sleeps == 0
    assert outcome.events_written == 2
    assert outcome.caught_up_s == {"consumer": 0.0}
    assert outcome.details == ("consumer processed all 2 events the publisher had written "
                               "(up to seq 2) within 0.00s")


def test_waits_for_a_fixed_target_while_the_consumer_catches_up() -> None:
    clock = Clock()
    written = iter([[event(i) for i in range(1, 11)]] + [[event(i) for i in range(1, 99)]] * 50)
    outcome = prove(lambda: next(written), {"consumer": log_catching_up(3)},
                    clock=clock, sleep=clock.sleep)
    # The target stays the 10 events written when the check began, however many follow.
    assert outcome.ok and outcome.events_written == 10
    assert clock.sleeps == 3
    assert outcome.caught_up_s["consumer"] == pytest.approx(0.3)


def test_fails_naming_the_consumer_and_the_first_event_it_never_processed() -> None:
    clock = Clock()
    outcome = prove(lambda: [event(1), event(2), event(3)],
                    {"consumer": lambda: {"e1", "e2", "e3"}, "consumer2": lambda: {"e1"}},
                    clock=clock, sleep=clock.sleep)
    assert not outcome.ok
    assert clock.now - 100.0 == pytest.approx(WAIT_S, abs=0.11)
    assert outcome.caught_up_s == {"consumer": 0.0}
    assert outcome.unprocessed == {"consumer2": 2}
    assert outcome.details == ("consumer2 processed 1 of the 3 events the publisher had "
                               "written, 10s later (first unprocessed: seq 2 (StockAdjusted "
                               "product 3 v2))")
    assert outcome.record()["ok"] is False


def test_an_empty_system_never_shows_the_hypothesis() -> None:
    clock = Clock()
    outcome = prove(lambda: [], {"consumer": lambda: set()}, wait_s=2.0,
                    clock=clock, sleep=clock.sleep)
    assert not outcome.ok
    assert outcome.details == "the publisher had written no event after 2s"


def test_a_service_that_does_not_answer_is_named() -> None:
    clock = Clock()

    def down() -> set[str]:
        raise ServiceCallError("cannot GET http://127.0.0.1:9/deliveries: ConnectError")

    outcome = prove(lambda: [event(1)], {"consumer": down}, wait_s=1.0,
                    clock=clock, sleep=clock.sleep)
    assert not outcome.ok
    assert outcome.details == ("ServiceCallError: cannot GET http://127.0.0.1:9/deliveries: "
                               "ConnectError")


def test_a_consumer_that_answers_again_in_time_passes() -> None:
    clock = Clock()
    answers = iter([ServiceCallError("refused"), ServiceCallError("refused"), {"e1"}])

    def flaky() -> set[str]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert prove(lambda: [event(1)], {"consumer": flaky}, clock=clock, sleep=clock.sleep).ok


def test_unprocessed_is_in_publication_order() -> None:
    assert [e["sequence"] for e in unprocessed([event(3), event(1), event(2)], {"e2"})] == [1, 3]


def test_not_reached_message() -> None:
    assert not_reached("before the first fault", "x") == \
        "steady state not reached before the first fault: x"


class FakeConsumer:
    """GET /deliveries?after=&limit= over a scripted log; records each call."""

    def __init__(self, log: list[dict[str, Any]]) -> None:
        self.log = log
        self.calls: list[int] = []

    def get_json(self, path: str, after: int, limit: int) -> list[dict[str, Any]]:
        assert path == "/deliveries"
        self.calls.append(after)
        return [d for d in self.log if d["id"] > after][:limit]


def delivery(n: int, outcome: str = "applied") -> dict[str, Any]:
    return {"id": n, "event_id": f"e{n}" if outcome != "dead_lettered" else None,
            "outcome": outcome}


def test_processed_log_reads_only_what_is_new_and_counts_processing_outcomes() -> None:
    fake = FakeConsumer([delivery(1), delivery(2, "deduplicated"), delivery(3, "stale"),
                         delivery(4, "dead_lettered"), delivery(5, "resynced")])
    log = ProcessedLog(fake)  # type: ignore[arg-type]
    assert log() == {"e1", "e2", "e3", "e5"}
    fake.log.append(delivery(6))
    assert log() == {"e1", "e2", "e3", "e5", "e6"}
    assert fake.calls == [0, 5]


def test_processed_log_follows_full_pages() -> None:
    fake = FakeConsumer([delivery(n) for n in range(1, PAGE + 3)])
    log = ProcessedLog(fake)  # type: ignore[arg-type]
    assert len(log()) == PAGE + 2
    assert fake.calls == [0, PAGE]
