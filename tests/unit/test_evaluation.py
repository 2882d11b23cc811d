"""evaluate(): the whole judgement of a scenario from collected data, no I/O."""

from __future__ import annotations

from typing import Any

from harness.evaluation import Collected, SecondConsumerData, evaluate, repaired_ids

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


def test_second_consumer_gets_its_own_checks_and_the_first_must_be_unaffected() -> None:
    fault = {"fault": "stop:consumer2", "target": "consumer2", "phase": "inject", "at": 9.5,
             "healed_at": 10.5, "verified": True, "evidence": "stopped",
             "expected_lag_s": None}
    second = SecondConsumerData(replica=[ROW], deliveries=[delivery(1, "e1", 1),
                                                           delivery(2, "e2", 2)],
                                initial_sync=False)
    result = evaluate(collected(second=second, faults=[fault], faults_planned=1))
    checks = names(result)
    assert checks["convergence[consumer2]"] and checks["unaffected"]
    assert checks["fault_was_active"]


def test_repaired_ids_by_kind_of_resync() -> None:
    assert repaired_ids(None) == set()
    assert repaired_ids({"resync": "full"}) is None
    assert repaired_ids({"resync": "auto", "auto_ids": [3]}) == {3}
    assert repaired_ids({"resync": "partial", "detected_ids": [1],
                         "resync_report": {"changed_ids": [2]}}) == {1, 2}
