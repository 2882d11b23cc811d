"""A resync excuses exactly what it made up for: a full resync (or an initial sync) the
events at or below its export's high-water mark, a partial one the products it rewrote.
Every event above the mark must still be processed exactly once."""

from __future__ import annotations

from typing import Any

from harness.checkers import effect_once, no_lost_updates
from harness.checkers.delivery import Excuses
from harness.evaluation import resync_excuses


def delta(sequence: int, pid: int | None = None) -> dict[str, Any]:
    return {"event_id": f"e{sequence}", "type": "StockAdjusted",
            "aggregate_id": str(pid if pid is not None else 1 + sequence % 10),
            "version": sequence, "sequence": sequence, "sent_at": 1.0}


def processed(events: list[dict[str, Any]], outcome: str = "applied") -> list[dict[str, Any]]:
    return [{"event_id": e["event_id"], "outcome": outcome} for e in events]


EVENTS = [delta(s) for s in range(1, 101)]
FULL_AT_50 = Excuses(full_resync_marks=(50,))


def test_nothing_processed_after_a_full_resync_fails_naming_the_events_above_its_mark() -> None:
    lost = no_lost_updates(EVENTS, [], FULL_AT_50)
    assert lost.status == "fail"
    assert lost.details.startswith("lost updates: 50 of 100 published events never reached")
    assert "sequences 51..100, above the high-water mark 50 of the full resync" in lost.details
    assert lost.counterexample["lost_event_ids"] == [f"e{s}" for s in range(51, 101)]

    once = effect_once(EVENTS, [], FULL_AT_50)
    assert once.status == "fail"
    assert "50 stock deltas never applied" in once.details
    assert "sequences 51..100, above the high-water mark 50" in once.details
    assert once.counterexample["never_applied"] == [f"e{s}" for s in range(51, 101)]


def test_a_full_resync_excuses_the_events_up_to_its_mark_only() -> None:
    after_mark = processed(EVENTS[50:])
    lost = no_lost_updates(EVENTS, after_mark, FULL_AT_50)
    assert lost.ok
    assert lost.details == ("all 100 published events were processed or covered by a resync "
                            "(50 never arrived; full resync at high-water mark 50)")
    assert effect_once(EVENTS, after_mark, FULL_AT_50).ok
    one_gap = [d for d in after_mark if d["event_id"] != "e51"]
    assert no_lost_updates(EVENTS, one_gap, FULL_AT_50).counterexample == \
        {"lost_event_ids": ["e51"]}


def test_the_latest_of_several_full_resyncs_bounds_the_excuse() -> None:
    excuses = Excuses(full_resync_marks=(20, 60))
    assert excuses.covered_upto == 60
    assert no_lost_updates(EVENTS, processed(EVENTS[60:]), excuses).ok
    assert not no_lost_updates(EVENTS, processed(EVENTS[61:]), excuses).ok


def test_an_event_above_the_mark_processed_twice_still_fails() -> None:
    deliveries = processed(EVENTS[50:]) + processed([EVENTS[70]])
    result = effect_once(EVENTS, deliveries, FULL_AT_50)
    assert result.status == "fail"
    assert result.counterexample["applied_twice"] == ["e71"]


def test_a_partial_resync_excuses_the_products_it_rewrote() -> None:
    events = [delta(1, pid=3), delta(2, pid=4)]
    excuses = Excuses(repaired_ids=frozenset({3}))
    assert no_lost_updates(events, processed(events[1:]), excuses).ok
    assert not no_lost_updates(events, processed(events[:1]), excuses).ok


def test_resync_excuses_from_the_integrity_record() -> None:
    assert resync_excuses(None) == Excuses()
    full = resync_excuses({"resync": "full", "detected_ids": [1, 2],
                           "resync_report": {"kind": "full", "high_water_mark": 50,
                                             "changed_ids": [1, 2, 3]}})
    # A full resync excuses by sequence only: the products it rewrote are not excused.
    assert full == Excuses(full_resync_marks=(50,))
    failed_full = resync_excuses({"resync": "full", "resync_report": {"error": "refused"}})
    assert failed_full == Excuses()
    assert resync_excuses({"resync": "auto", "auto_ids": [3]}) == \
        Excuses(repaired_ids=frozenset({3}))
    partial = resync_excuses({"resync": "partial", "detected_ids": [1],
                              "resync_report": {"kind": "partial", "changed_ids": [2]}})
    assert partial == Excuses(repaired_ids=frozenset({1, 2}))


def test_resync_excuses_from_a_late_joiners_resync_history() -> None:
    history = [{"kind": "full", "high_water_mark": 120, "changed_ids": [1, 2]},
               {"kind": "partial", "changed_ids": [9]}]
    assert resync_excuses(None, history) == Excuses(frozenset({9}), (120,))
