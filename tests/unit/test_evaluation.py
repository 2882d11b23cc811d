"""evaluate(): the whole judgement of a scenario from collected data, no I/O."""

from __future__ import annotations

from typing import Any

from harness.collected import ConsumerObservation
from harness.evaluation import Collected, ConsumerData, evaluate

ROW = {"id": 1, "name": "a", "category": "c", "price": 1, "stock": 2, "restricted_note": "",
       "version": 2}


def event(eid: str, version: int, kind: str = "ProductUpserted", at: float = 10.0
          ) -> dict[str, Any]:
    return {"event_id": eid, "type": kind, "aggregate_id": "1", "version": version,
            "sequence": version, "occurred_at": at, "sent_at": at}


def delivery(n: int, eid: str, version: int, outcome: str = "applied", at: float = 10.0
             ) -> dict[str, Any]:
    return {"id": n, "event_id": eid, "aggregate_id": "1", "version": version,
            "outcome": outcome, "occurred_at": at, "committed_at": at + 0.01,
            "redelivered": False}


def collected(**overrides: Any) -> Collected:
    base: dict[str, Any] = dict(
        ops=[{"ok": True}], source=[ROW], replica=[ROW],
        published=[event("e1", 1), event("e2", 2)],
        deliveries=[delivery(1, "e1", 1), delivery(2, "e2", 2)], dead_letters=[],
        broker_dead_letters=0, faults=[], faults_planned=0, converged_after_s=0.1,
        converge_timeout_s=10, settle_s=1)
    return Collected(**{**base, **overrides})


def names(evaluation: Any) -> dict[str, bool]:
    return {c.name: c.ok for c in evaluation.checks}


def test_a_clean_run_passes_every_check() -> None:
    result = evaluate(collected())
    assert all(names(result).values()), names(result)
    assert set(names(result)) == {"progress", "convergence", "no_lost_updates", "effect_once",
                                  "no_stale_overwrite", "accounting"}


def test_a_lost_event_fails_no_lost_updates_and_convergence() -> None:
    result = evaluate(collected(deliveries=[delivery(1, "e1", 1)],
                                replica=[{**ROW, "version": 1}], converged_after_s=None))
    checks = names(result)
    assert not checks["no_lost_updates"] and not checks["convergence"]
    convergence = next(c for c in result.checks if c.name == "convergence")
    assert convergence.details.startswith("not converged within 10s")


def test_events_dropped_on_purpose_are_left_to_integrity_checks() -> None:
    fault = {"fault": "relay_drop:1", "target": "publisher", "phase": "inject", "at": 9.0,
             "healed_at": 11.0, "verified": True, "evidence": "dropped 1",
             "relay_fault": {"dropped": [{"aggregate_id": "1", "version": 2}]}}
    result = evaluate(collected(deliveries=[delivery(1, "e1", 1)], faults=[fault],
                                faults_planned=1))
    lost = next(c for c in result.checks if c.name == "no_lost_updates")
    assert lost.ok and "1 events dropped on purpose" in lost.details
    # A relay fault does not slow replication: it is judged by its own evidence.
    assert result.faults[0]["impact_observed"] is True


def stop(target: str, at: float = 9.5, expected_lag_s: float | None = 0.3
         ) -> dict[str, Any]:
    return {"fault": f"stop:{target}", "target": target, "phase": "inject", "at": at,
            "healed_at": at + 1.0, "verified": True, "evidence": "stopped",
            "expected_lag_s": expected_lag_s}


def consumer(*deliveries: dict[str, Any], joined_at: float | None = None) -> ConsumerData:
    return ConsumerData(replica=[ROW], deliveries=list(deliveries), initial_sync=False,
                        joined_at=joined_at)


BOTH = (delivery(1, "e1", 1), delivery(2, "e2", 2))


def test_second_consumer_gets_its_own_checks_and_the_first_must_be_unaffected() -> None:
    # consumer2 processed e2 4 s late: its own lag shows its stop was felt.
    late = {**delivery(2, "e2", 2), "committed_at": 14.0}
    result = evaluate(collected(other_consumers={"consumer2": consumer(BOTH[0], late)},
                                faults=[stop("consumer2")], faults_planned=1))
    checks = names(result)
    assert checks["convergence[consumer2]"] and checks["unaffected"]
    assert "unaffected[consumer2]" not in checks  # nothing hit another consumer
    assert checks["fault_was_active"] and result.faults[0]["sustained_lag_s"] == 4.0


def test_every_other_consumer_is_judged_like_the_second() -> None:
    others = {"consumer2": consumer(*BOTH), "consumer3": consumer(delivery(1, "e1", 1))}
    checks = names(evaluate(collected(other_consumers=others)))
    for name in ("convergence", "no_lost_updates", "effect_once", "no_stale_overwrite"):
        assert checks[f"{name}[consumer2]"], name
        assert f"{name}[consumer3]" in checks, name
    assert not checks["no_lost_updates[consumer3]"]  # e2 never reached consumer3


def test_a_fault_on_one_consumer_is_judged_by_its_own_replication() -> None:
    # consumer3 processed e2 (written during its stop) 4 s late: its lag shows the fault;
    # the first consumer and consumer2 kept up, so both are unaffected.
    late = {**delivery(2, "e2", 2), "committed_at": 14.0}
    published = [event("e1", 1, at=8.0), event("e2", 2, at=10.0)]
    first = [delivery(1, "e1", 1, at=8.0), delivery(2, "e2", 2, at=10.0)]
    others = {"consumer2": consumer(*first),
              "consumer3": consumer(delivery(1, "e1", 1, at=8.0), late)}
    result = evaluate(collected(published=published, deliveries=first,
                                other_consumers=others, faults=[stop("consumer3.i2")],
                                faults_planned=1))
    [fault] = result.faults
    assert fault["target"] == "consumer3.i2" and fault["recovery_s"] is not None
    assert fault["recovery_s"] > 2.0  # consumer3's lag, not the first consumer's
    checks = names(result)
    assert checks["unaffected"] and checks["unaffected[consumer2]"]
    assert "unaffected[consumer3]" not in checks


def test_a_consumer_slowed_by_another_ones_fault_is_not_unaffected() -> None:
    late = {**delivery(2, "e2", 2), "committed_at": 14.0}
    others = {"consumer2": consumer(delivery(1, "e1", 1), late)}
    unaffected = next(c for c in evaluate(collected(
        other_consumers=others, faults=[stop("consumer")], faults_planned=1)).checks
        if c.name == "unaffected[consumer2]")
    assert unaffected.status == "fail" and "4.000s, against 0.000s" in unaffected.details


def test_unaffected_leaves_out_faults_too_short_to_judge_and_before_a_join() -> None:
    instant = stop("consumer2", expected_lag_s=None)  # e.g. a kill and restart
    result = evaluate(collected(other_consumers={"consumer2": consumer(*BOTH)},
                                faults=[instant], faults_planned=1))
    assert "unaffected" not in names(result)
    # A fault on the first consumer before consumer2 subscribed says nothing about it.
    result = evaluate(collected(other_consumers={"consumer2": consumer(*BOTH,
                                                                       joined_at=10.0)},
                                faults=[stop("consumer")], faults_planned=1))
    assert "unaffected[consumer2]" not in names(result)


def statuses(evaluation: Any) -> dict[str, str]:
    return {c.name: c.status for c in evaluation.checks}


def test_a_full_resync_excuses_only_events_up_to_its_high_water_mark() -> None:
    # e1 (sequence 1) is covered by the export at mark 1; e2 came after it and never arrived.
    integrity = {"resync": "full", "true_ids": [1], "detected_ids": [1],
                 "resync_report": {"kind": "full", "high_water_mark": 1},
                 "converged_after_repair": True}
    result = evaluate(collected(deliveries=[], integrity=integrity))
    lost = next(c for c in result.checks if c.name == "no_lost_updates")
    assert lost.status == "fail" and "above the high-water mark 1" in lost.details
    assert lost.counterexample == {"lost_event_ids": ["e2"]}
    covered = evaluate(collected(deliveries=[delivery(1, "e2", 2)], integrity=integrity))
    assert statuses(covered)["no_lost_updates"] == "pass"


def observed_resyncs(*reports: dict[str, Any]) -> ConsumerObservation:
    return ConsumerObservation(replica_db=[], samples=[], sample_reads=[], sampler={},
                               queue=None, resyncs=list(reports))


def test_a_late_joiner_is_excused_only_up_to_its_initial_syncs_mark() -> None:
    initial_sync = observed_resyncs({"kind": "full", "high_water_mark": 1})
    second = ConsumerData(replica=[ROW], deliveries=[delivery(1, "e2", 2)],
                          initial_sync=True, observed=initial_sync)
    assert statuses(evaluate(collected(other_consumers={"consumer2": second})))[
        "no_lost_updates[consumer2]"] == "pass"
    gap = ConsumerData(replica=[ROW], deliveries=[], initial_sync=True, observed=initial_sync)
    lost = next(c for c in evaluate(collected(other_consumers={"consumer2": gap})).checks
                if c.name == "no_lost_updates[consumer2]")
    assert lost.status == "fail" and lost.counterexample == {"lost_event_ids": ["e2"]}


def test_progress_is_judged_against_the_planned_writes() -> None:
    ops = [{"ok": True}] + [{"ok": False}] * 999
    result = evaluate(collected(ops=ops, writes_planned=1000))
    assert statuses(result)["progress"] == "fail"
    lowered = evaluate(collected(ops=ops, writes_planned=1000, min_write_share=0.001))
    assert statuses(lowered)["progress"] == "pass"


def test_integrity_is_judged_against_the_truth_and_the_spot_check() -> None:
    integrity = {"resync": "partial", "true_ids": [1], "detected_ids": [1],
                 "sample": {"checked": 2, "ids": [1, 2], "differing": [1]},
                 "resync_report": {"kind": "partial", "changed_ids": [1]},
                 "converged_after_repair": True}
    assert statuses(evaluate(collected(integrity=integrity)))["integrity_restored"] == "pass"
    too_many = {**integrity, "detected_ids": list(range(1, 100_001))}
    assert statuses(evaluate(collected(integrity=too_many)))["integrity_restored"] == "fail"
    nothing = {**integrity, "true_ids": [], "detected_ids": []}
    result = evaluate(collected(integrity=nothing))
    assert statuses(result)["integrity_restored"] == "inconclusive"
    assert result.metrics["integrity"]["truly_diverged"] == 0


def test_auto_repair_counts_the_consumers_own_fetches_and_needs_the_truth() -> None:
    fetched = {**delivery(3, "e3", 3, outcome="resynced"), "aggregate_id": "7"}
    integrity = {"resync": "auto", "auto_ids": [5], "true_ids": [5, 7],
                 "converged_after_repair": True}
    result = evaluate(collected(integrity=integrity,
                                deliveries=[delivery(1, "e1", 1), delivery(2, "e2", 2),
                                            fetched]))
    assert statuses(result)["auto_repaired"] == "pass"
    untold = evaluate(collected(integrity={**integrity, "true_ids": None}))
    assert statuses(untold)["auto_repaired"] == "inconclusive"
    assert untold.metrics["integrity"]["truly_diverged"] is None
