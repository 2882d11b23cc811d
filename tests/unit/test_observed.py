"""The checks resting on the harness's own observation (harness/checkers/observed.py): each
passes on what a correct system leaves behind and fails, naming both sides, on what a
broken or lying one leaves behind."""

from __future__ import annotations

from typing import Any

import pytest

from harness.checkers import observed
from harness.checkers.observed import Excuses, ProductState, Repairs
from harness.collected import Collected, ConsumerData, ConsumerObservation
from harness.contract.envelope import from_event
from harness.evaluation import evaluate
from harness.observers.tap import record_message

NO_EXCUSES = Excuses(frozenset(), frozenset(), frozenset(), ())
NO_REPAIRS = Repairs(None, frozenset())
COMPLETE = {"complete": True, "drained": True}
FIELDS = {"name": "lamp", "category": "home", "price": 100, "restricted_note": ""}
T0 = 1_000.0


def upsert(pid: int, version: int, seq: int, stock: int = 10, **fields: Any
           ) -> dict[str, Any]:
    return event(pid, version, seq, "ProductUpserted", {**FIELDS, "stock": stock, **fields})


def stock(pid: int, version: int, seq: int, delta: int, after: int) -> dict[str, Any]:
    return event(pid, version, seq, "StockAdjusted", {"delta": delta, "stock": after})


def delete(pid: int, version: int, seq: int) -> dict[str, Any]:
    return event(pid, version, seq, "ProductDeleted", {})


def event(pid: int, version: int, seq: int, kind: str, payload: dict[str, Any]
          ) -> dict[str, Any]:
    return {"event_id": f"e{seq}", "type": kind, "aggregate_id": str(pid), "version": version,
            "sequence": seq, "occurred_at": T0 + seq, "schema_version": 1, "payload": payload,
            "sent_at": T0 + seq}


def tapped(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the tap records for these events, sent as the relay encodes them."""
    return [record_message(from_event(e).encode(), False, T0 + e["sequence"]) for e in events]


def row(pid: int, version: int, stock_: int = 10, deleted: bool = False, **fields: Any
        ) -> dict[str, Any]:
    return {"id": pid, **FIELDS, "stock": stock_, "version": version, "deleted": deleted,
            **fields}


def delivery(n: int, e: dict[str, Any], outcome: str = "applied", at: float | None = None
             ) -> dict[str, Any]:
    return {"id": n, "event_id": e["event_id"], "type": e["type"],
            "aggregate_id": e["aggregate_id"], "version": e["version"],
            "sequence": e["sequence"], "outcome": outcome, "redelivered": False,
            "committed_at": at if at is not None else T0 + e["sequence"] + 0.01}


# A product created with stock 10, then +5 and -2: the source ends at stock 13, v3.
HISTORY = [upsert(1, 1, 1), stock(1, 2, 2, 5, 15), stock(1, 3, 3, -2, 13)]
SOURCE = [{k: v for k, v in row(1, 3, 13).items() if k != "deleted"}]


# -- folding -------------------------------------------------------------------------------
def test_fold_applies_each_delta_once_on_the_last_upsert() -> None:
    states = observed.fold(HISTORY)
    assert states[1] == ProductState(3, False, {**FIELDS, "stock": 13})


def test_fold_cannot_tell_a_delta_after_a_gap_until_the_next_upsert() -> None:
    gap = [HISTORY[0], HISTORY[2]]  # v2 never arrived
    assert observed.fold(gap)[1].fields is None
    healed = observed.fold([*gap, upsert(1, 4, 4, stock=7)])
    assert healed[1] == ProductState(4, False, {**FIELDS, "stock": 7})


def test_fold_keeps_a_deleted_products_fields_and_skips_older_versions() -> None:
    states = observed.fold([*HISTORY, delete(1, 4, 4)])
    assert states[1].deleted and states[1].version == 4
    start = {1: ProductState(3, False, {**FIELDS, "stock": 99})}
    assert observed.fold(HISTORY, start)[1].fields == {**FIELDS, "stock": 99}


# -- acknowledged writes reach the broker --------------------------------------------------
def ops_for(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"index": i, "op": "write", "product_id": int(e["aggregate_id"]), "ok": True,
             "event_id": e["event_id"], "version": e["version"], "sequence": e["sequence"]}
            for i, e in enumerate(events)]


def test_acknowledged_writes_seen_by_the_tap_pass() -> None:
    check = observed.acknowledged_writes_published(ops_for(HISTORY), tapped(HISTORY),
                                                   COMPLETE, NO_EXCUSES)
    assert check.ok, check.details


def test_an_acknowledged_write_the_broker_never_carried_is_a_lost_update() -> None:
    check = observed.acknowledged_writes_published(ops_for(HISTORY), tapped(HISTORY[:2]),
                                                   COMPLETE, NO_EXCUSES)
    assert not check.ok
    assert "lost updates" in check.details and "e3" in check.details
    assert check.counterexample["lost_event_ids"] == ["e3"]


def test_writes_dropped_on_purpose_are_excused_and_anonymous_ones_fail() -> None:
    dropped = Excuses(frozenset({3}), frozenset(), frozenset(), ())
    assert observed.acknowledged_writes_published(ops_for(HISTORY), tapped(HISTORY[:2]),
                                                  COMPLETE, dropped).ok
    anonymous = [{"index": 9, "ok": True}]
    check = observed.acknowledged_writes_published(anonymous, [], COMPLETE, NO_EXCUSES)
    assert not check.ok and "no event_id" in check.details


def test_a_tap_that_missed_events_makes_the_check_inconclusive() -> None:
    check = observed.acknowledged_writes_published(
        ops_for(HISTORY), [], {"complete": False, "drained": False}, NO_EXCUSES)
    assert check.status == "inconclusive" and "not drained" in check.details


# -- tap vs outbox -------------------------------------------------------------------------
def test_the_tap_carrying_exactly_the_outbox_passes() -> None:
    assert observed.tap_matches_outbox(tapped(HISTORY), COMPLETE, HISTORY, NO_EXCUSES).ok


def test_an_event_the_source_does_not_hold_fails() -> None:
    ghost = upsert(2, 1, 9)
    check = observed.tap_matches_outbox(tapped([*HISTORY, ghost]), COMPLETE, HISTORY,
                                        NO_EXCUSES)
    assert not check.ok and "outbox does not hold" in check.details


def test_an_outbox_event_the_broker_never_carried_fails_unless_dropped() -> None:
    check = observed.tap_matches_outbox(tapped(HISTORY[:2]), COMPLETE, HISTORY, NO_EXCUSES)
    assert not check.ok and "never saw" in check.details and "marked sent" in check.details
    dropped = Excuses(frozenset({3}), frozenset(), frozenset(), ())
    assert observed.tap_matches_outbox(tapped(HISTORY[:2]), COMPLETE, HISTORY, dropped).ok


def test_altered_content_fails_unless_a_relay_fault_declared_it() -> None:
    altered = [HISTORY[0] | {"payload": {**HISTORY[0]["payload"], "name": "pmal"}},
               *HISTORY[1:]]
    check = observed.tap_matches_outbox(tapped(altered), COMPLETE, HISTORY, NO_EXCUSES)
    assert not check.ok and "'pmal'" in check.details
    declared = Excuses(frozenset(), frozenset({1}), frozenset({(1, 1)}), ())
    check = observed.tap_matches_outbox(tapped(altered), COMPLETE, HISTORY, declared)
    assert check.ok and "altered on the way" in check.details


def test_other_bytes_with_the_same_content_pass() -> None:
    records = tapped(HISTORY)
    records[0] = {**records[0], "digest": "0" * 64}  # e.g. another JSON key order
    assert observed.tap_matches_outbox(records, COMPLETE, HISTORY, NO_EXCUSES).ok


def test_unparseable_messages_and_self_contradicting_stock_events_fail() -> None:
    junk = record_message(b"{not json", False, T0)
    check = observed.tap_matches_outbox([*tapped(HISTORY), junk], COMPLETE, HISTORY,
                                        NO_EXCUSES)
    assert not check.ok and "not valid envelopes" in check.details
    lying = [HISTORY[0], stock(1, 2, 2, 5, 99), HISTORY[2]]
    check = observed.tap_matches_outbox(tapped(lying), COMPLETE, lying, NO_EXCUSES)
    assert not check.ok and "says stock 99" in check.details and "gives 15" in check.details


# -- the broker's counters -----------------------------------------------------------------
COUNTERS = {"name": "orders.product-events", "ready": 0, "unacked": 0, "consumers": 1,
            "read_with": "rabbitmqctl list_queues", "read_s": 0.2}


def test_a_drained_queue_passes_and_a_backlog_fails() -> None:
    assert observed.queue_drained(COUNTERS, "").ok
    check = observed.queue_drained({**COUNTERS, "unacked": 3}, "")
    assert not check.ok and "3 unacknowledged" in check.details


def test_unreadable_counters_are_inconclusive() -> None:
    check = observed.queue_drained(None, "rabbitmqctl exited 69")
    assert check.status == "inconclusive" and "exited 69" in check.details


# -- the model of the replica --------------------------------------------------------------
def model_check(replica: list[dict[str, Any]], tap: list[dict[str, Any]] | None = None,
                published: list[dict[str, Any]] | None = None,
                source: list[dict[str, Any]] | None = None,
                deliveries: list[dict[str, Any]] | None = None,
                repairs: Repairs = NO_REPAIRS,
                excuses: Excuses = NO_EXCUSES) -> Any:
    published = HISTORY if published is None else published
    return observed.replica_matches_tap_model(
        tapped(published) if tap is None else tap, COMPLETE, published,
        SOURCE if source is None else source, replica, deliveries or [], repairs, excuses)


def test_a_replica_equal_to_the_model_passes() -> None:
    assert model_check([row(1, 3, 13)]).ok


def test_a_double_applied_delta_fails_even_when_the_log_says_deduplicated() -> None:
    log = [delivery(1, HISTORY[0]), delivery(2, HISTORY[1]), delivery(3, HISTORY[2]),
           delivery(4, HISTORY[1], "deduplicated")]
    check = model_check([row(1, 3, 18)], deliveries=log)
    assert not check.ok
    assert "stock 18 where the tapped stream gives stock 13" in check.details
    assert "e2 (StockAdjusted product 1 v2, delta +5) applied, deduplicated" in check.details


def test_a_missing_delta_fails_even_when_the_log_says_stale() -> None:
    log = [delivery(1, HISTORY[0]), delivery(2, HISTORY[1]), delivery(3, HISTORY[2], "stale")]
    check = model_check([row(1, 2, 15)], deliveries=log)
    assert not check.ok and "version 2" in check.details and "stale" in check.details


def test_a_delete_that_never_took_effect_and_a_row_never_carried_fail() -> None:
    published = [*HISTORY, delete(1, 4, 4)]
    check = model_check([row(1, 3, 13)], published=published, source=[])
    assert not check.ok and "live at v3 where the tapped stream has it deleted at v4" \
        in check.details
    check = model_check([row(1, 3, 13), row(7, 1)])
    assert not check.ok and "never carried any event of it" in check.details


def test_after_a_full_resync_the_model_starts_from_the_source_at_its_mark() -> None:
    # The broker lost v2 for this consumer; the full resync's export (at seq 2) holds it.
    published = [*HISTORY, stock(1, 4, 4, 1, 14)]
    tap = tapped([HISTORY[0], HISTORY[2], published[3]])  # what the tap carried: no v2
    source = [{**SOURCE[0], "stock": 14, "version": 4}]
    resynced = Repairs(2, frozenset())
    assert model_check([row(1, 4, 14)], tap, published, source, repairs=resynced).ok
    # An event after the mark applied twice (or missed) is not excused by the resync.
    check = model_check([row(1, 4, 15)], tap, published, source, repairs=resynced)
    assert not check.ok and "stock 15 where the tapped stream gives stock 14" in check.details
    assert "high-water mark" not in check.details


def test_products_the_stream_cannot_tell_must_equal_the_source() -> None:
    tap = tapped([HISTORY[0], HISTORY[2]])  # v2 never reached the broker
    dropped = Excuses(frozenset({2}), frozenset(), frozenset(), ())
    assert model_check([row(1, 3, 13)], tap, excuses=dropped).ok
    check = model_check([row(1, 3, 8)], tap, excuses=dropped)
    assert not check.ok and "the tapped stream cannot tell" in check.details


def test_a_product_a_resync_rewrote_may_equal_the_source_instead() -> None:
    # The stream says name "lamp"; a partial resync rewrote it to the source's "desk".
    source = [{**SOURCE[0], "name": "desk"}]
    assert not model_check([row(1, 3, 13, name="desk")], source=source).ok
    assert model_check([row(1, 3, 13, name="desk")], source=source,
                       repairs=Repairs(None, frozenset({1}))).ok


# -- API vs database file ------------------------------------------------------------------
def test_the_api_and_the_database_file_must_agree() -> None:
    api = [{k: v for k, v in row(1, 3, 13).items() if k != "deleted"}]
    db = [row(1, 3, 13), row(2, 5, deleted=True)]
    assert observed.replica_api_matches_db(api, db).ok
    check = observed.replica_api_matches_db([{**api[0], "stock": 12}], db)
    assert not check.ok and "stock 12 in the API, 13 in the DB" in check.details
    check = observed.replica_api_matches_db([], db)
    assert not check.ok and "the API does not report" in check.details


# -- version consistency -------------------------------------------------------------------
def sampled(*rows: tuple[float, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "t": t} for t, r in rows]


def consistency(samples: list[dict[str, Any]], reads: list[float] | None = None,
                deliveries: list[dict[str, Any]] | None = None,
                excuses: Excuses = NO_EXCUSES,
                windows: list[tuple[float, float]] | None = None) -> Any:
    return observed.version_consistency(
        samples, reads if reads is not None else [s["t"] for s in samples], HISTORY,
        tapped(HISTORY), deliveries or [], excuses, windows or [])


def test_rows_at_the_sources_state_for_their_version_pass() -> None:
    assert consistency(sampled((T0 + 1, row(1, 1, 10)), (T0 + 2, row(1, 2, 15)),
                               (T0 + 3, row(1, 3, 13)))).ok


def test_a_transient_double_delta_is_caught_though_the_end_state_is_right() -> None:
    log = [delivery(1, HISTORY[1], "deduplicated", at=T0 + 2.4)]
    check = consistency(sampled((T0 + 2, row(1, 2, 15)), (T0 + 2.5, row(1, 2, 20)),
                                (T0 + 3, row(1, 3, 13))), deliveries=log)
    assert not check.ok
    assert "stock 20 where the source's outbox at v2 gives stock 15" in check.details
    assert "the broker tap carried the same" in check.details
    assert "e2 (StockAdjusted v2) deduplicated" in check.details


def test_rows_of_declared_corruption_are_excused_until_the_product_is_right_again() -> None:
    wrong = sampled((T0 + 1, row(1, 1, 10, name="pmal")), (T0 + 2, row(1, 2, 15, name="pmal")),
                    (T0 + 3, row(1, 3, 13)))
    assert not consistency(wrong).ok
    declared = Excuses(frozenset(), frozenset({1}), frozenset({(1, 1)}), ())
    check = consistency(wrong, excuses=declared)
    assert check.ok and "2 written while a fault corrupted data" in check.details
    # Once right again, a later wrong row is a finding.
    later = [*wrong, *sampled((T0 + 4, row(1, 3, 14)))]
    assert not consistency(later, excuses=declared).ok


def test_rows_written_while_a_consumer_defect_was_live_are_excused() -> None:
    wrong = sampled((T0 + 1, row(1, 1, 10, name="la")))
    assert consistency(wrong, windows=[(T0, T0 + 0.5)]).ok
    assert not consistency(wrong, windows=[(T0 + 5, T0 + 6)]).ok


def test_tombstones_may_keep_an_older_version_but_never_invent_a_delete() -> None:
    deleted = [*HISTORY, delete(1, 4, 4)]
    samples = sampled((T0 + 1, row(1, 2, 15, deleted=True)))
    ok = observed.version_consistency(samples, [T0 + 1], deleted, tapped(deleted), [],
                                      NO_EXCUSES, [])
    assert ok.ok
    check = consistency(samples)
    assert not check.ok and "the source never deleted it" in check.details


def test_a_version_the_source_never_had_fails_and_no_reads_is_inconclusive() -> None:
    check = consistency(sampled((T0 + 1, row(1, 9, 10))))
    assert not check.ok and "never had" in check.details
    assert consistency([], reads=[]).status == "inconclusive"


# -- the consumer's log, cross-checked -----------------------------------------------------
def log_check(deliveries: list[dict[str, Any]], replica: list[dict[str, Any]],
              samples: list[dict[str, Any]] | None = None,
              reads: list[float] | None = None, tap: list[dict[str, Any]] | None = None
              ) -> Any:
    samples = samples or []
    return observed.log_matches_observation(
        deliveries, tapped(HISTORY) if tap is None else tap, HISTORY, replica, samples,
        reads if reads is not None else [s["t"] for s in samples])


HONEST = [delivery(i + 1, e) for i, e in enumerate(HISTORY)]


def test_an_honest_log_passes() -> None:
    samples = sampled((T0 + 1.5, row(1, 1)), (T0 + 2.5, row(1, 2, 15)),
                      (T0 + 3.5, row(1, 3, 13)))
    assert log_check([*HONEST, delivery(4, HISTORY[2], "deduplicated")], [row(1, 3, 13)],
                     samples).ok


def test_a_stale_claim_the_final_replica_contradicts_fails() -> None:
    lying = [*HONEST[:2], delivery(3, HISTORY[2], "stale")]
    check = log_check(lying, [row(1, 2, 15)])
    assert not check.ok
    assert ("the broker tap saw e3 (StockAdjusted product 1 v3, delta -2); the consumer's "
            "log says it was stale, but the replica DB ends with product 1 at v2"
            ) in check.details


def test_a_stale_claim_a_sample_after_its_batch_committed_contradicts_fails() -> None:
    # Later healed (final v3), but after the claim's batch committed (the next batch began
    # at +3.1) the row was still at v2.
    lying = [*HONEST[:2], delivery(3, HISTORY[2], "stale", at=T0 + 3.0),
             delivery(4, HISTORY[0], "deduplicated", at=T0 + 3.1)]
    samples = sampled((T0 + 2.5, row(1, 2, 15)), (T0 + 4.0, row(1, 3, 13)))
    check = log_check(lying, [row(1, 3, 13)], samples, reads=[T0 + 2.5, T0 + 3.2, T0 + 4.0])
    assert not check.ok and "after that batch committed" in check.details
    assert "at v2" in check.details


def test_a_stale_claim_against_its_own_batch_is_judged_after_the_commit() -> None:
    # The batch that began at +3.0 was stale against its own earlier message and committed
    # late: a read at +3.05, before the next batch began, still shows the old state.
    claim = [*HONEST[:2], delivery(3, HISTORY[2], "stale", at=T0 + 3.0),
             delivery(4, HISTORY[0], "deduplicated", at=T0 + 3.5)]
    samples = sampled((T0 + 2.5, row(1, 2, 15)), (T0 + 3.4, row(1, 3, 13)))
    assert log_check(claim, [row(1, 3, 13)], samples,
                     reads=[T0 + 2.5, T0 + 3.05, T0 + 3.4, T0 + 3.6]).ok


def test_a_deduplicated_delta_that_moved_the_stock_fails() -> None:
    lying = [*HONEST, delivery(4, HISTORY[1], "deduplicated", at=T0 + 3.6)]
    samples = sampled((T0 + 3.5, row(1, 3, 13)), (T0 + 3.75, row(1, 3, 18)))
    check = log_check(lying, [row(1, 3, 18)], samples)
    assert not check.ok
    assert "stock go 13 -> 18 at v3 without a new version" in check.details
    assert "e2 (StockAdjusted product 1 v2, delta +5) was deduplicated" in check.details


def test_a_logged_event_nobody_saw_or_misdescribed_fails() -> None:
    ghost = {**delivery(9, upsert(1, 9, 99)), "event_id": "nobody"}
    check = log_check([*HONEST, ghost], [row(1, 3, 13)])
    assert not check.ok and "neither the broker tap nor the publisher's outbox" \
        in check.details
    renamed = [*HONEST[:2], {**HONEST[2], "aggregate_id": "2"}]
    check = log_check(renamed, [row(1, 3, 13)])
    assert not check.ok and "records it as aggregate_id '2'" in check.details


# -- the truth in auto-repair mode ---------------------------------------------------------
@pytest.mark.parametrize(("carried", "divergent"), [
    (HISTORY, []),                                    # everything arrived
    (HISTORY[:2], [1]),                               # the last event was dropped
    ([HISTORY[0], HISTORY[2]], [1]),                  # a delta after a gap: cannot tell
    ([upsert(1, 1, 1), upsert(1, 3, 3, stock=13)], []),  # a gap healed by a full upsert
])
def test_divergent_by_tap(carried: list[dict[str, Any]], divergent: list[int]) -> None:
    assert observed.divergent_by_tap(tapped(carried), SOURCE) == divergent


def test_divergent_by_tap_counts_a_live_product_the_source_deleted() -> None:
    assert observed.divergent_by_tap(tapped(HISTORY), []) == [1]
    assert observed.divergent_by_tap(tapped([*HISTORY, delete(1, 4, 4)]), []) == []


# -- excuses from fault records and resync reports -----------------------------------------
def test_excuses_from_fault_records() -> None:
    faults = [{"target": "publisher", "at": 1.0, "healed_at": 2.0, "corrupts_data": True,
               "relay_fault": {"dropped": [], "corrupted": [
                   {"aggregate_id": "4", "version": 2, "sequence": 7}]}},
              {"target": "publisher", "at": 1.0, "healed_at": 2.0,
               "relay_fault": {"dropped": [{"aggregate_id": "5", "version": 1, "sequence": 8,
                                            "type": "ProductUpserted"}], "corrupted": []}},
              {"target": "consumer", "at": 3.0, "healed_at": 4.0, "corrupts_data": True},
              {"target": "consumer2.i2", "at": 5.0, "healed_at": 6.0, "corrupts_data": True}]
    excuses = Excuses.from_faults(faults)
    assert excuses.dropped == {8} and excuses.corrupted == {7}
    assert excuses.corrupted_versions == {(4, 2)}
    assert excuses.windows_for("consumer", ["consumer", "consumer2"]) == [(3.0, 4.0)]
    # An instance's fault is its consumer's.
    assert excuses.windows_for("consumer2", ["consumer", "consumer2"]) == [(5.0, 6.0)]


def test_repairs_from_resync_reports() -> None:
    reports: list[dict[str, Any]] = [
        {"kind": "partial", "changed_ids": [3]}, {"kind": "auto", "changed_ids": [4]},
        {"kind": "full", "high_water_mark": 40, "changed_ids": [5]},
        {"kind": "full", "high_water_mark": None}]  # a failed one marks nothing
    assert Repairs.from_reports(reports) == Repairs(40, frozenset({3, 4}))


# -- wired into evaluate() -----------------------------------------------------------------
OBSERVED_CHECKS = ("acknowledged_writes_published", "tap_matches_outbox", "queue_drained",
                   "replica_matches_tap_model", "replica_api_matches_db",
                   "version_consistency", "log_matches_observation")


def collected_run(replica_db: list[dict[str, Any]]) -> Collected:
    api = [{k: v for k, v in row(1, 3, 13).items() if k != "deleted"}]
    seen = ConsumerObservation(replica_db=replica_db,
                               samples=sampled((T0 + 3.5, row(1, 3, 13))),
                               sample_reads=[T0 + 3.5], sampler={}, queue=COUNTERS)
    return Collected(
        ops=ops_for(HISTORY), source=SOURCE, replica=api, published=HISTORY,
        deliveries=HONEST, dead_letters=[], broker_dead_letters=0, faults=[],
        faults_planned=0, converged_after_s=0.1, converge_timeout_s=10, settle_s=1,
        tap=tapped(HISTORY), tap_status=COMPLETE, observed=seen,
        other_consumers={key: ConsumerData(replica=api, deliveries=HONEST, initial_sync=False,
                                           observed=seen) for key in ("consumer2", "consumer3")})


def test_evaluate_runs_every_observed_check_for_each_consumer() -> None:
    statuses = {c.name: c.status for c in evaluate(collected_run([row(1, 3, 13)])).checks}
    for name in OBSERVED_CHECKS:
        assert statuses[name] == "pass", name
    for name in OBSERVED_CHECKS[2:]:
        assert statuses[f"{name}[consumer2]"] == "pass", name
        assert statuses[f"{name}[consumer3]"] == "pass", name


def test_convergence_is_judged_on_the_database_file_not_on_the_api() -> None:
    checks = {c.name: c for c in evaluate(collected_run([row(1, 3, 12)])).checks}
    assert not checks["convergence"].ok and "stock 12 != 13" in checks["convergence"].details
    assert not checks["replica_api_matches_db"].ok
    assert not checks["convergence[consumer2]"].ok
    assert not checks["convergence[consumer3]"].ok


def test_a_row_built_on_a_declared_corruption_is_excused_only_as_the_broker_carried_it() -> None:
    # The relay sent v1 corrupted (name "pmal", declared by its fault); the consumer then
    # applied v2's delta on top. The sampler never saw v1 itself.
    carried = [upsert(1, 1, 1, name="pmal"), *HISTORY[1:]]
    declared = Excuses(frozenset(), frozenset({1}), frozenset({(1, 1)}), ())

    def judge(*rows: tuple[float, dict[str, Any]]) -> Any:
        samples = sampled(*rows)
        return observed.version_consistency(samples, [s["t"] for s in samples], HISTORY,
                                            tapped(carried), [], declared, [])

    faithful = judge((T0 + 2, row(1, 2, 15, name="pmal")))
    assert faithful.ok and "1 written while a fault corrupted data" in faithful.details
    # Neither the source's state nor what the broker carried: the consumer's own doing.
    own_doing = judge((T0 + 2, row(1, 2, 16, name="pmal")))
    assert not own_doing.ok and "stock 16" in own_doing.details
    # Without a declared corruption, matching the tap does not excuse a wrong row.
    undeclared = observed.version_consistency(
        sampled((T0 + 2, row(1, 2, 15, name="pmal"))), [T0 + 2], HISTORY, tapped(carried),
        [], NO_EXCUSES, [])
    assert not undeclared.ok
