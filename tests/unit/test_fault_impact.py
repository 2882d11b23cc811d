"""Whether a fault was felt: lag sustained over its window against a baseline before it,
the consumer's log for faults only it can see, the kernel's word for a pause."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.checkers import fault_was_active
from harness.checkers.recovery import assess_faults, lag_reached_by
from harness.faults.process import PauseProcess, process_state
from harness.runtime.base import Component, Endpoint

AT = 1000.0  # the fault is injected at this time, healed 2 s later
RATE = 200  # events written per second


def run(lag_at: Callable[[float], float], start: float = AT - 4, end: float = AT + 4
        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events written at RATE from `start` to `end`, each processed `lag_at(written)` later."""
    published, deliveries = [], []
    for n in range(int((end - start) * RATE)):
        written = start + n / RATE
        published.append({"event_id": f"e{n}", "occurred_at": written})
        deliveries.append({"id": n, "event_id": f"e{n}", "outcome": "applied",
                           "committed_at": written + lag_at(written)})
    return published, deliveries


def fault(expected: float | None = 0.6, **extra: Any) -> dict[str, Any]:
    return {"fault": "stop:consumer", "phase": "inject", "verified": True, "at": AT,
            "healed_at": AT + 2.0, "expected_lag_s": expected, "evidence": "stopped", **extra}


def judged(record: dict[str, Any], published: list[dict[str, Any]],
           deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    [assessed] = assess_faults([record], published, deliveries)
    return assessed


def test_lag_reached_by_a_share_ignores_a_few_slow_events() -> None:
    assert lag_reached_by([]) == 0.0
    assert lag_reached_by([5.0] + [0.01] * 99) == 0.01
    assert lag_reached_by([1.0] * 25 + [0.0] * 75) == 1.0


def test_a_lag_spike_just_before_a_fault_does_not_count_as_felt() -> None:
    # Unrelated to the fault, the consumer stalls from 0.1 s before it to 0.7 s into it:
    # events written then wait until AT + 0.7. The fault itself changes nothing. The worst
    # lag inside the window (0.7 s) exceeds the 0.6 s expected, which used to count.
    def lag(t: float) -> float:
        return AT + 0.7 - t if AT - 0.1 <= t <= AT + 0.7 else 0.01

    record = judged(fault(), *run(lag))
    assert record["max_lag_in_window_s"] >= 0.6
    assert record["impact_observed"] is False
    assert record["sustained_lag_s"] < 0.6
    result = fault_was_active([record], expected=1)
    assert result.status == "fail"
    assert result.details.startswith("1 faults were not felt (stop:consumer: lag reached by "
                                     "25% of the 401 events written during its 2.0s")
    assert "it had to add 0.600s" in result.details


def test_lag_that_was_there_before_the_fault_is_not_its_impact() -> None:
    record = judged(fault(), *run(lambda t: 1.0))
    assert record["baseline_lag_s"] == pytest.approx(1.0)
    assert record["impact_observed"] is False


def test_an_outage_is_felt() -> None:
    # Consumer down for the whole window: everything written meanwhile waits for the heal.
    def lag(t: float) -> float:
        return AT + 2.1 - t if AT <= t <= AT + 2.0 else 0.01

    record = judged(fault(), *run(lag))
    assert record["impact_observed"] is True
    assert record["sustained_lag_s"] >= 0.6 + record["baseline_lag_s"]
    assert fault_was_active([record], expected=1).ok


def test_added_latency_is_felt() -> None:
    record = judged(fault(expected=0.24),
                    *run(lambda t: 0.31 if AT <= t <= AT + 2.0 else 0.01))
    assert record["impact_observed"] is True


def test_a_fault_lag_cannot_show_is_judged_by_its_own_evidence() -> None:
    record = judged(fault(expected=None), *run(lambda t: 0.01))
    assert record["impact_observed"] is True
    assert record["impact"].startswith("judged by its own evidence")


def duplicate_fault(at_least: int) -> dict[str, Any]:
    return fault(expected=None, fault="duplicate_delivery:orders", log_effect={
        "outcome": "deduplicated", "after": AT, "at_least": at_least,
        "event_ids": ["e1", "e2"], "since": f"{at_least} duplicates of them were published"})


def logged(outcome: str, event_id: str, received_at: float) -> dict[str, Any]:
    return {"event_id": event_id, "outcome": outcome, "received_at": received_at,
            "committed_at": received_at + 0.01}


def test_duplicates_are_felt_when_the_log_shows_them_deduplicated() -> None:
    published, deliveries = run(lambda t: 0.01)
    copies = [logged("deduplicated", eid, AT + 0.5) for eid in ("e1", "e2", "e1", "e2")]
    assert judged(duplicate_fault(4), published, deliveries + copies)["impact_observed"]


def test_duplicates_the_log_does_not_show_deduplicated_are_not_felt() -> None:
    published, deliveries = run(lambda t: 0.01)
    # One copy deduplicated before the injection (an ordinary redelivery), one of another
    # event, two applied again: only 2 of the 4 count.
    noise = [logged("deduplicated", "e1", AT - 1), logged("deduplicated", "e9", AT + 1),
             logged("deduplicated", "e1", AT + 1), logged("deduplicated", "e2", AT + 1),
             logged("applied", "e1", AT + 1), logged("applied", "e2", AT + 1)]
    record = judged(duplicate_fault(4), published, deliveries + noise)
    assert record["impact_observed"] is False
    result = fault_was_active([record], expected=1)
    assert result.status == "fail"
    assert ("duplicate_delivery:orders: the consumer's log shows 2 deduplicated deliveries "
            "of its 2 events after 4 duplicates of them were published; at least 4 "
            "expected") in result.details


def reorder_fault() -> dict[str, Any]:
    return fault(expected=0.6, fault="reorder:orders", log_effect={
        "outcome": "stale", "after": AT + 2.0, "at_least": 1,
        "since": "300 held messages were released newest first"})


def held(t: float) -> float:
    return AT + 2.1 - t if AT <= t <= AT + 2.0 else 0.01


def test_a_reorder_is_felt_with_a_stale_skip_after_the_release() -> None:
    published, deliveries = run(held)
    skipped = logged("stale", "e5", AT + 2.05)
    assert judged(reorder_fault(), published, [*deliveries, skipped])["impact_observed"]


def test_a_reorder_without_a_stale_skip_after_the_release_is_not_felt() -> None:
    published, deliveries = run(held)
    before_release = logged("stale", "e5", AT + 1.0)
    record = judged(reorder_fault(), published, [*deliveries, before_release])
    assert record["impact_observed"] is False
    assert record["impact"].startswith("the consumer's log shows 0 stale deliveries after "
                                       "300 held messages were released newest first")


# -- pause: the process must be seen stopped ------------------------------------------------


class Child(Component):
    """A real child process; `honours_pause` False makes pause() a no-op (a broken runtime)."""

    def __init__(self, honours_pause: bool = True) -> None:
        self.name = "sleeper"
        self.honours_pause = honours_pause
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

    def start(self) -> None:
        """Started in the constructor."""

    def stop(self, timeout_s: float = 10.0) -> None:
        self.resume()
        self.proc.kill()
        self.proc.wait(timeout_s)

    def kill(self) -> int | None:
        self.stop()
        return self.proc.returncode

    def pause(self) -> None:
        if self.honours_pause:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def is_running(self) -> bool:
        return self.proc.poll() is None

    def logs(self, tail_lines: int = 40) -> str:
        return ""

    def endpoint(self, port_name: str = "main") -> Endpoint:
        return Endpoint("127.0.0.1", 0)

    @property
    def identity(self) -> str:
        return f"pid {self.proc.pid}"


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for child in made:
        child.stop()


def test_a_pause_is_verified_by_the_process_state(children: list[Child]) -> None:
    child = Child()
    children.append(child)
    pause = PauseProcess(child)
    pause.inject()
    assert process_state(child) == "T"
    pause.heal()
    evidence = pause.evidence()
    assert evidence.verified
    assert "process state T after the pause, T before the resume" in evidence.description


def test_a_pause_that_never_stopped_the_process_is_not_verified(
        children: list[Child]) -> None:
    child = Child(honours_pause=False)
    children.append(child)
    pause = PauseProcess(child)
    pause.inject()
    pause.heal()
    evidence = pause.evidence()
    assert not evidence.verified
    assert "after the pause" in evidence.description
    assert "process state T" not in evidence.description


def test_process_state_is_unknown_without_a_local_pid(children: list[Child]) -> None:
    child = Child()
    children.append(child)
    assert process_state(child) in ("R", "S")

    class Container(Child):
        @property
        def identity(self) -> str:
            return "container 3f2a"

    remote = Container()
    children.append(remote)
    assert process_state(remote) is None


# -- what a fault must add: the runner's expectation -----------------------------------------


def test_expected_lag_by_kind_of_fault() -> None:
    from types import SimpleNamespace
    from typing import cast

    from harness.faults.network import ToxicFault
    from harness.faults.publisher import RelayMisbehaves
    from harness.links import CONSUMER_BROKER, CONSUMER_PUBLISHER, Links
    from harness.runner import expected_lag_s

    links = cast(Links, None)  # never called: only the toxic's attributes are read
    latency = ToxicFault(links, CONSUMER_BROKER, "latency", "downstream",
                         {"latency": 300, "jitter": 50})
    # Half the lowest latency (300 - 50 ms): confirms delayed on the relay's link spread
    # lags over [0, latency].
    assert expected_lag_s(latency, CONSUMER_BROKER, 2.0) == 0.125
    assert expected_lag_s(latency, CONSUMER_PUBLISHER, 2.0) is None  # carries no events
    frozen = cast(Component, SimpleNamespace(name="consumer"))
    assert expected_lag_s(PauseProcess(frozen), "consumer", 5.0) == 1.5
    assert expected_lag_s(PauseProcess(frozen), "consumer", 0.5) is None  # too short
    relay = RelayMisbehaves(frozen, "drop", 40, "admin-token")
    assert expected_lag_s(relay, "publisher", 2.0) is None  # drops instead of slowing
    # Any consumer's: another consumer's publisher link carries no events either; while
    # one of several instances is down, the others take its messages; a link is shared.
    assert expected_lag_s(latency, "consumer3_publisher", 2.0) is None
    assert expected_lag_s(PauseProcess(frozen), "consumer2.i2", 5.0, instances=2) is None
    assert expected_lag_s(PauseProcess(frozen), "consumer2", 5.0, instances=2) is None
    assert expected_lag_s(PauseProcess(frozen), "consumer2", 5.0) == 1.5
    assert expected_lag_s(latency, "consumer2_broker", 2.0, instances=2) == 0.125


def test_a_fault_inside_an_earlier_faults_recovery_is_judged_by_its_own_evidence() -> None:
    # The first fault stalls the consumer until AT + 3.5, well past the second's start at
    # AT + 2.5: the second adds nothing measurable on top.
    first = {**fault(), "fault": "timeout:consumer_broker", "at": AT - 1.0,
             "healed_at": AT + 1.0}
    second = {**fault(), "fault": "limit_data:consumer_broker", "at": AT + 2.5,
              "healed_at": AT + 4.5}

    def lag(t: float) -> float:
        return AT + 3.5 - t if AT - 1.0 <= t <= AT + 3.5 else 0.01

    published, deliveries = run(lag, end=AT + 6)
    assessed = assess_faults([first, second], published, deliveries)
    assert assessed[0]["impact_observed"] is True
    assert "impact_inseparable" not in assessed[0]
    assert assessed[1]["impact_inseparable"] is True
    assert "still recovering from timeout:consumer_broker" in assessed[1]["impact"]
    result = fault_was_active(assessed, expected=2)
    assert result.ok
    assert result.details.endswith("1 began while replication was still recovering from an "
                                   "earlier fault and are judged by their own evidence only "
                                   "(limit_data:consumer_broker)")


# -- unaffected: one consumer's outage is not another's --------------------------------------


def test_unaffected_fails_when_the_other_consumer_lagged_or_lost_events() -> None:
    from harness.checkers import unaffected

    window = [(AT, AT + 2.0, 0.6)]  # the other consumer's fault counts as felt at +0.6 s
    published, deliveries = run(lambda t: 0.01)
    assert unaffected(published, deliveries, window).ok
    slowed = run(lambda t: 1.5 if AT <= t <= AT + 2.0 else 0.01)
    result = unaffected(*slowed, window)
    assert result.status == "fail"
    assert result.details.startswith(
        "affected by the other consumer's fault: 0 of 401 events missing; this consumer's "
        "lag reached by 25% of the 401 events written during the other consumer's fault "
        "(2.0s): 1.500s, against 0.010s over the 400 events it processed in the 2.0s "
        "before it, 0.600s more counts that fault as felt here")
    missing = [d for d in deliveries if d["event_id"] != "e900"]
    assert "1 of 401 events missing" in unaffected(published, missing, window).details
    nothing_written = unaffected(published, deliveries, [(AT + 10, AT + 12, 0.6)])
    assert nothing_written.status == "fail"
    assert nothing_written.details.startswith("no event was written while")


def test_unaffected_judges_lag_against_the_consumers_own_lag_before_the_fault() -> None:
    from harness.checkers import unaffected

    # A broker whose ordinary lag is 2.5 s (Tansu on S3): steady, so unaffected...
    window = [(AT, AT + 2.0, 0.6)]
    assert unaffected(*run(lambda t: 2.5), window).ok
    # ...but not when the other consumer's fault adds to it.
    slowed = run(lambda t: 3.5 if AT <= t <= AT + 2.0 else 2.5)
    result = unaffected(*slowed, window)
    assert result.status == "fail" and "3.500s, against 2.500s" in result.details


# -- a link with no replication traffic: the client's own counters --------------------------


class FakeLinks:
    """Keeps toxics by name, as the proxy API would confirm them."""

    def __init__(self) -> None:
        self.toxics: set[str] = set()

    def add_toxic(self, link: str, name: str, **_: object) -> None:
        self.toxics.add(name)

    def remove_toxic(self, link: str, name: str) -> None:
        self.toxics.discard(name)

    def toxic_names(self, link: str) -> list[str]:
        return sorted(self.toxics)


def throttle_seen_by(calls_ms: list[float], toxic_type: str = "bandwidth",
                     attributes: dict[str, Any] | None = None) -> Any:
    """A toxic (a bandwidth one unless told) whose client made 100 calls of 5 ms before it,
    then `calls_ms`."""
    from typing import cast

    from harness.faults.network import ToxicFault
    from harness.links import CONSUMER_PUBLISHER, Links

    counters = iter([{"runs": 100.0, "failures": 0.0, "latency_ms_total": 500.0},
                     {"runs": 100.0 + len(calls_ms), "failures": 0.0,
                      "latency_ms_total": 500.0 + sum(calls_ms)}])
    toxic = ToxicFault(cast(Links, FakeLinks()), CONSUMER_PUBLISHER, toxic_type, "downstream",
                       attributes or {"rate": 1}, probe=lambda: next(counters))
    toxic.inject()
    toxic.heal()
    return toxic.evidence()


def test_a_throttle_the_client_felt_is_verified() -> None:
    evidence = throttle_seen_by([300.0] * 5)
    assert evidence.verified
    assert "client saw 0 failures, 300 ms per call" in evidence.description


def test_a_throttle_the_client_did_not_feel_is_not_verified() -> None:
    evidence = throttle_seen_by([60.0] * 5)  # slower than before, but under the 100 ms due
    assert not evidence.verified
    assert "client saw 0 failures, 60 ms per call" in evidence.description


def test_latency_felt_by_one_call_is_verified_whatever_calls_without_it_dilute() -> None:
    # The second call began before the toxic: the average (155 ms) is under the 240 ms due,
    # but the calls together took 300 ms more than at the 5 ms per call before.
    evidence = throttle_seen_by([305.0, 5.0], "latency", {"latency": 300, "jitter": 50})
    assert evidence.verified
    assert "155 ms per call over 2 calls, 300 ms more in all than at the 5 ms per call " \
        "before it" in evidence.description


def test_calls_that_gained_no_latency_do_not_verify_a_latency_toxic() -> None:
    evidence = throttle_seen_by([6.0, 5.0, 7.0], "latency", {"latency": 300, "jitter": 50})
    assert not evidence.verified
    assert "3 ms more in all" in evidence.description
