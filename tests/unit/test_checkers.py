"""Unit tests for harness.checkers: pure functions over history and final states."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checkers import (
    CheckResult,
    accounting,
    compare_datasets,
    effect_once,
    fault_was_active,
    no_lost_updates,
    no_stale_overwrite,
    progress,
)
from harness.checkers.base import sample


def prod(pid: int, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"id": pid, "name": f"item {pid}", "category": "books",
                              "price": 100 * pid, "stock": pid, "restricted_note": "n",
                              "version": 1}
    values.update(overrides)
    return values


def published(event_id: str, kind: str = "StockAdjusted", pid: int = 1, version: int = 2,
              sequence: int = 1, sent_at: float | None = 1.0) -> dict[str, Any]:
    return {"event_id": event_id, "type": kind, "aggregate_id": str(pid),
            "version": version, "sequence": sequence, "sent_at": sent_at}


def delivered(event_id: str | None, outcome: str) -> dict[str, Any]:
    return {"event_id": event_id, "outcome": outcome}


# -- base -----------------------------------------------------------------------------------


def test_sample_limits_and_counts_the_rest() -> None:
    assert sample([1, 2, 3]) == "1, 2, 3"
    assert sample(list(range(8)), 3) == "0, 1, 2, ... (5 more)"


def test_check_result_to_dict() -> None:
    result = CheckResult("x", False, "bad", {"ids": [1]})
    assert result.to_dict() == {"name": "x", "ok": False, "status": "fail", "details": "bad",
                                "counterexample": {"ids": [1]}}


# -- convergence ----------------------------------------------------------------------------


def test_compare_datasets_passes_on_equal_data_in_any_order() -> None:
    source = [prod(1), prod(2), prod(3)]
    replica = [prod(3), prod(1), prod(2)]
    result = compare_datasets(source, replica)
    assert result.ok
    assert result.name == "convergence"
    assert result.details == "replica equals source: 3 products"
    assert result.counterexample == {}


def test_compare_datasets_ignores_fields_that_are_not_replicated() -> None:
    result = compare_datasets([prod(1, deleted=False)], [prod(1, deleted=True, extra="x")])
    assert result.ok


def test_compare_datasets_accepts_string_ids() -> None:
    assert compare_datasets([prod(1)], [{**prod(1), "id": "1"}]).ok


def test_compare_datasets_reports_missing_ids() -> None:
    result = compare_datasets([prod(1), prod(2), prod(3)], [prod(2)])
    assert not result.ok
    assert "2 ids missing from the replica (1, 3)" in result.details
    assert result.details.startswith("replica diverges from source (3 source rows)")
    assert result.counterexample["missing"] == [1, 3]
    assert result.counterexample["extra"] == []
    assert result.counterexample["differing"] == {}


def test_compare_datasets_reports_extra_ids() -> None:
    result = compare_datasets([prod(1)], [prod(1), prod(7), prod(5)])
    assert not result.ok
    assert "2 ids in the replica but deleted or absent at the source (5, 7)" in result.details
    assert "missing" not in result.details
    assert result.counterexample["extra"] == [5, 7]
    assert result.counterexample["missing"] == []


def test_compare_datasets_reports_differing_fields() -> None:
    source = [prod(1), prod(2), prod(3)]
    replica = [prod(1), prod(2, stock=99, version=1), prod(3, name="old", version=0)]
    result = compare_datasets(source, replica)
    assert not result.ok
    assert "2 rows differ" in result.details
    assert "id 2: stock 99 != 2" in result.details
    assert "id 3: name 'old' != 'item 3', version 0 != 1" in result.details
    assert result.counterexample["differing"] == {
        "2": {"stock": {"source": 2, "replica": 99}},
        "3": {"name": {"source": "item 3", "replica": "old"},
              "version": {"source": 1, "replica": 0}},
    }
    assert result.counterexample["missing"] == []


def test_compare_datasets_only_compares_requested_fields() -> None:
    source, replica = [prod(1)], [prod(1, stock=50)]
    assert compare_datasets(source, replica, fields=("name", "price")).ok
    named = compare_datasets(source, replica, fields=("stock",), name="stock_only")
    assert not named.ok
    assert named.name == "stock_only"


def test_compare_datasets_reports_all_kinds_together() -> None:
    result = compare_datasets([prod(1), prod(2)], [prod(2, price=1), prod(3)])
    assert not result.ok
    assert "1 ids missing from the replica (1)" in result.details
    assert "(3)" in result.details
    assert "1 rows differ" in result.details
    assert (result.counterexample["missing"], result.counterexample["extra"]) == ([1], [3])
    assert list(result.counterexample["differing"]) == ["2"]


def test_compare_datasets_samples_long_lists() -> None:
    result = compare_datasets([prod(i) for i in range(1, 201)], [])
    assert "200 ids missing from the replica (1, 2, 3, 4, 5, ... (195 more))" in result.details
    assert result.counterexample["missing"] == list(range(1, 101))


def test_compare_datasets_empty_sides() -> None:
    assert compare_datasets([], []).ok
    assert not compare_datasets([], [prod(1)]).ok


# -- no_lost_updates ------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["applied", "stale", "resynced", "deduplicated"])
def test_no_lost_updates_counts_every_processed_outcome(outcome: str) -> None:
    result = no_lost_updates([published("a")], [delivered("a", outcome)])
    assert result.ok
    assert result.details == "all 1 published events were processed"


def test_no_lost_updates_passes_with_redeliveries_and_unpublished_noise() -> None:
    events = [published("a"), published("b", "ProductUpserted", version=1)]
    deliveries = [delivered("a", "applied"), delivered("a", "deduplicated"),
                  delivered("b", "applied"), delivered(None, "dead_lettered"),
                  delivered("zzz", "applied")]
    assert no_lost_updates(events, deliveries).ok


def test_no_lost_updates_passes_with_nothing_published() -> None:
    assert no_lost_updates([], []).ok


def test_no_lost_updates_reports_never_delivered_events() -> None:
    events = [published("a"), published("b", "ProductDeleted", pid=4, version=3, sequence=9),
              published("c")]
    result = no_lost_updates(events, [delivered("a", "applied"), delivered("c", "stale")])
    assert not result.ok
    assert result.name == "no_lost_updates"
    assert result.details.startswith("lost updates: 1 of 3 published events never reached")
    assert "ProductDeleted product 4 v3 seq 9" in result.details
    assert "never relayed" not in result.details
    assert result.counterexample == {"lost_event_ids": ["b"]}


def test_no_lost_updates_does_not_count_dead_letters_as_processed() -> None:
    result = no_lost_updates([published("a")], [delivered("a", "dead_lettered")])
    assert not result.ok
    assert result.counterexample["lost_event_ids"] == ["a"]


def test_no_lost_updates_says_which_were_never_relayed() -> None:
    events = [published("a", sent_at=None), published("b", sent_at=2.0),
              published("c", sent_at=None)]
    result = no_lost_updates(events, [])
    assert not result.ok
    assert "lost updates: 3 of 3" in result.details
    assert "2 of them were never relayed from the outbox" in result.details
    assert result.counterexample["lost_event_ids"] == ["a", "b", "c"]


# -- effect_once ----------------------------------------------------------------------------


def test_effect_once_passes_when_each_delta_applied_once() -> None:
    events = [published("up", "ProductUpserted", version=1), published("d1"),
              published("d2", version=3)]
    deliveries = [delivered("up", "applied"), delivered("d1", "applied"),
                  delivered("d1", "deduplicated"), delivered("d2", "applied"),
                  delivered("d2", "deduplicated"), delivered("d2", "deduplicated")]
    result = effect_once(events, deliveries)
    assert result.ok
    assert result.details == ("all 2 stock deltas took effect exactly once "
                              "(2 were delivered more than once)")


@pytest.mark.parametrize("outcome", ["stale", "resynced"])
def test_effect_once_accepts_superseded_deltas(outcome: str) -> None:
    assert effect_once([published("d")], [delivered("d", outcome)]).ok


def test_effect_once_passes_non_delta_events_processed_once() -> None:
    events = [published("u", "ProductUpserted"), published("x", "ProductDeleted")]
    deliveries = [delivered("u", "applied"), delivered("u", "deduplicated")]
    result = effect_once(events, deliveries)
    assert result.ok
    assert "all 0 stock deltas" in result.details


def test_effect_once_flags_any_event_processed_twice() -> None:
    events = [published("u", "ProductUpserted")]
    deliveries = [delivered("u", "applied"), delivered("u", "stale")]
    result = effect_once(events, deliveries)
    assert not result.ok
    assert "1 events processed more than once instead of being deduplicated" in result.details
    assert result.counterexample["processed_twice"] == ["u"]


def test_effect_once_reports_deltas_applied_twice() -> None:
    events = [published("d1", pid=3, version=5, sequence=11), published("d2")]
    deliveries = [delivered("d1", "applied"), delivered("d1", "applied"),
                  delivered("d2", "applied")]
    result = effect_once(events, deliveries)
    assert not result.ok
    assert result.name == "effect_once"
    assert "1 stock deltas applied more than once" in result.details
    assert "StockAdjusted product 3 v5 seq 11" in result.details
    assert "never applied" not in result.details
    assert result.counterexample == {"never_applied": [], "applied_twice": ["d1"],
                                     "processed_twice": ["d1"]}


def test_effect_once_reports_deltas_never_applied() -> None:
    events = [published("d1"), published("d2", pid=8, version=4, sequence=2),
              published("d3")]
    deliveries = [delivered("d1", "applied"), delivered("d2", "dead_lettered"),
                  delivered("d3", "deduplicated")]
    result = effect_once(events, deliveries)
    assert not result.ok
    assert "2 stock deltas never applied" in result.details
    assert "StockAdjusted product 8 v4 seq 2" in result.details
    assert "more than once" not in result.details
    assert result.counterexample == {"never_applied": ["d2", "d3"], "applied_twice": [],
                                     "processed_twice": []}


def test_effect_once_reports_both_problems() -> None:
    events = [published("twice"), published("never")]
    result = effect_once(events, [delivered("twice", "applied"),
                                  delivered("twice", "applied")])
    assert not result.ok
    assert result.details.startswith("not exactly once: ")
    assert "1 stock deltas never applied" in result.details
    assert "1 stock deltas applied more than once" in result.details
    assert result.counterexample == {"never_applied": ["never"], "applied_twice": ["twice"],
                                     "processed_twice": ["twice"]}


# -- run checks -----------------------------------------------------------------------------


def test_progress_passes_with_the_required_share_of_planned_writes() -> None:
    ops = [{"ok": True}] * 90 + [{"ok": False}] * 5
    result = progress(ops, planned=100)
    assert result.ok
    assert result.details == "90 of 100 planned writes succeeded (95 attempted)"


def test_progress_fails_with_one_write_in_a_thousand() -> None:
    ops = [{"ok": True}] + [{"ok": False}] * 999
    result = progress(ops, planned=1000)
    assert not result.ok
    assert result.details == ("too little load: 1 of 1000 planned writes succeeded "
                              "(1000 attempted), the scenario requires 90% (900)")
    assert result.counterexample == {"succeeded": 1, "attempted": 1000, "planned": 1000,
                                     "required": 900}


def test_progress_counts_planned_writes_that_were_never_attempted() -> None:
    # All 100 attempted writes succeeded, but the plan was 1,000: most of the load never ran.
    result = progress([{"ok": True}] * 100, planned=1000)
    assert not result.ok
    assert "100 of 1000 planned writes succeeded (100 attempted)" in result.details


def test_progress_honours_a_lower_declared_share() -> None:
    ops = [{"ok": True}] * 30 + [{"ok": False}] * 70
    assert progress(ops, planned=100, min_share=0.3).ok
    assert not progress(ops, planned=100, min_share=0.31).ok


def test_progress_without_a_plan_judges_the_attempted_writes() -> None:
    assert progress([{"ok": True}] * 9 + [{}], planned=None).ok
    result = progress([{"ok": False}, {"ok": True}, {}])
    assert not result.ok
    assert result.details.startswith("too little load: 1 of 3 writes succeeded")


@pytest.mark.parametrize("ops", [[], [{"ok": False}, {}]])
def test_progress_fails_without_successful_writes(ops: list[dict[str, Any]]) -> None:
    result = progress(ops, planned=10, min_share=0.0)
    assert not result.ok
    assert result.details == (f"no successful writes: 0 of 10 planned writes succeeded "
                              f"({len(ops)} attempted); the run proves nothing")


def fault(phase: str = "inject", verified: bool = True, name: str = "kill consumer",
          evidence: str | None = "pid changed") -> dict[str, Any]:
    record: dict[str, Any] = {"phase": phase, "fault": name, "verified": verified}
    if evidence is not None:
        record["evidence"] = evidence
    return record


def test_fault_was_active_passes_when_all_injected_and_verified() -> None:
    faults = [fault(evidence="redelivered 12"), fault("heal"), fault(evidence="pid 2 -> 3")]
    result = fault_was_active(faults, expected=2)
    assert result.ok
    assert result.details == "2 faults injected and observed (redelivered 12; pid 2 -> 3)"


def test_fault_was_active_fails_when_fewer_were_injected() -> None:
    result = fault_was_active([fault(), fault("heal")], expected=3)
    assert not result.ok
    assert result.details == "only 1 of 3 scheduled faults were injected"


def test_fault_was_active_fails_when_a_fault_had_no_effect() -> None:
    faults = [fault(), fault(verified=False, name="pause consumer", evidence="no backlog"),
              fault(verified=False, name="crash_mid_batch consumer", evidence=None)]
    result = fault_was_active(faults, expected=3)
    assert not result.ok
    assert result.details.startswith("2 faults had no observable effect")
    assert "pause consumer: no backlog" in result.details
    assert "crash_mid_batch consumer: no evidence" in result.details
    assert "kill consumer" not in result.details


def test_fault_was_active_fails_when_a_verified_fault_was_not_felt() -> None:
    felt = {**fault(), "impact_observed": True}
    unfelt = {**fault(name="pause consumer"), "impact_observed": False,
              "impact": "lag reached by 25% of the 400 events: 0.010s"}
    result = fault_was_active([felt, unfelt], expected=2)
    assert not result.ok
    assert result.details == ("1 faults were not felt (pause consumer: lag reached by 25% "
                              "of the 400 events: 0.010s)")
    assert result.counterexample == {"unfelt": ["pause consumer"]}
    assert fault_was_active([felt, fault()], expected=2).ok  # no impact data: not judged


# -- auto_repaired / accounting with the broker-side queue -----------------------------------


def test_auto_repaired_needs_every_true_id_repaired_and_convergence() -> None:
    from harness.checkers import auto_repaired

    nothing = auto_repaired([], [3, 5], True)
    assert nothing.status == "fail"
    assert "repaired 0 of 2 truly divergent ids by itself; never repaired: 3, 5" \
        in nothing.details
    harmless = auto_repaired([7, 8, 9], [3], True)  # rewrote rows, but not the divergent one
    assert harmless.status == "fail" and "never repaired: 3" in harmless.details
    stuck = auto_repaired([3, 5], [3, 5], False)
    assert stuck.status == "fail" and "did not converge" in stuck.details
    good = auto_repaired([5, 3, 11], [3, 5], True)
    assert good.ok
    assert "rewrote all 2 truly divergent rows by itself (3, 5), and 1 rows in flight" \
        in good.details


@pytest.mark.parametrize("truth", [None, []])
def test_auto_repaired_without_truth_is_inconclusive(truth: list[int] | None) -> None:
    from harness.checkers import auto_repaired

    result = auto_repaired([1, 2], truth, True)
    assert result.status == "inconclusive" and not result.ok


def test_accounting_flags_dead_letters_missing_from_the_broker_queue() -> None:
    letters = [{"reason": "malformed JSON: x"}, {"reason": "unknown type: Y"}]
    short = accounting([], letters, broker_dead_letters=1)
    assert not short.ok
    assert "only 1 in the broker-side dead-letter queue" in short.details
    assert accounting([], letters, broker_dead_letters=3).ok  # at-least-once copies


def test_accounting_matches_poison_to_dead_letters_by_reason() -> None:
    injected = {"malformed_json": 1, "unknown_type": 1}
    reasons = {"malformed_json": "malformed JSON", "unknown_type": "unknown type"}
    letters = [{"reason": "malformed JSON: x"}, {"reason": "unknown type: Y"}]
    assert accounting([], letters, injected, reasons).ok
    only_one = accounting([], letters[:1], injected, reasons)
    assert not only_one.ok
    assert "poison injected 2, dead-lettered 1" in only_one.details
    assert "unknown_type: 1 injected, 0 dead-lettered" in only_one.details
    unknown_outcome = accounting([{"event_id": "e", "outcome": "vanished"}], [])
    assert not unknown_outcome.ok and "no known outcome" in unknown_outcome.details


# -- no_stale_overwrite ---------------------------------------------------------------------


def logged(index: int, version: int, outcome: str, pid: str = "7") -> dict[str, Any]:
    return {"id": index, "aggregate_id": pid, "version": version, "outcome": outcome}


def test_no_stale_overwrite_passes_when_older_versions_are_skipped() -> None:
    log = [logged(1, 1, "applied"), logged(2, 3, "applied"), logged(3, 2, "stale"),
           logged(4, 4, "applied")]
    assert no_stale_overwrite(log).ok


def test_no_stale_overwrite_names_a_row_that_went_back() -> None:
    # Judged in log order (by id), whatever order the rows come in.
    log = [logged(3, 2, "applied"), logged(1, 1, "applied"), logged(2, 3, "resynced")]
    result = no_stale_overwrite(log)
    assert not result.ok
    assert "product 7 went from v3 back to v2" in result.details
    assert result.counterexample["regressions"] == ["product 7 went from v3 back to v2"]
