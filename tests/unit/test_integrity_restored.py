"""integrity_restored: verification must find what truly diverged, not much more, its spot
check must agree with the truth, and the repair must converge; no truth, no verdict."""

from __future__ import annotations

from harness.checkers import integrity_restored
from harness.checkers.integrity import extra_ids_allowed


def test_the_exact_divergence_found_and_repaired_passes() -> None:
    result = integrity_restored([4, 9], [9, 4], True, "partial",
                                {"checked": 3, "ids": [1, 4, 5], "differing": [4]})
    assert result.ok
    assert result.details == ("verification found 2 ids (2 truly diverged: 4, 9); its spot "
                              "check of 3 rows agrees; partial resync converged")


def test_a_hundred_thousand_reported_ids_for_one_true_divergence_fail() -> None:
    result = integrity_restored(list(range(1, 100_001)), [7], True, "partial")
    assert result.status == "fail"
    assert result.details.startswith("verification reported 100000 ids for 1 that truly "
                                     "diverged: 99999 never diverged")
    assert "at most 2 allowed (max(2, 10% of the truth))" in result.details
    assert result.counterexample["extra"][:3] == [1, 2, 3]


def test_a_few_extra_ids_within_the_stated_tolerance_pass() -> None:
    assert extra_ids_allowed(1) == 2 and extra_ids_allowed(30) == 3
    truth = list(range(100, 130))
    result = integrity_restored([*truth, 1, 2, 3], truth, True, "partial")
    assert result.ok and "3 more, within the 3 allowed" in result.details
    assert not integrity_restored([*truth, 1, 2, 3, 4], truth, True, "partial").ok


def test_missed_ids_fail() -> None:
    result = integrity_restored([1], [1, 2, 3], True, "partial")
    assert result.status == "fail"
    assert result.details == ("verification missed 2 of 3 divergent ids the harness found "
                              "(2, 3)")


def test_verification_that_reports_nothing_fails() -> None:
    result = integrity_restored(None, [5], True, "partial")
    assert result.status == "fail"
    assert result.details == "1 ids diverged but verification reported none (5)"


def test_a_spot_check_that_calls_an_equal_row_differing_fails() -> None:
    result = integrity_restored([4], [4], True, "partial",
                                {"checked": 2, "ids": [4, 6], "differing": [4, 6]})
    assert result.status == "fail"
    assert result.details == ("the spot check reported 1 ids differing that the harness "
                              "found equal (6)")


def test_a_spot_check_that_calls_a_divergent_row_equal_fails() -> None:
    result = integrity_restored([4, 8], [4, 8], True, "partial",
                                {"checked": 2, "ids": [2, 8], "differing": []})
    assert result.status == "fail"
    assert result.details == ("the spot check compared 1 truly divergent ids and called them "
                              "equal (8)")


def test_a_spot_check_that_could_not_run_is_not_judged() -> None:
    assert integrity_restored([4], [4], True, "partial",
                              {"checked": 0, "error": "publisher unreachable"}).ok


def test_no_convergence_after_the_repair_fails() -> None:
    result = integrity_restored([4], [4], False, "full")
    assert result.status == "fail"
    assert "did not converge after the full resync" in result.details


def test_nothing_truly_diverged_is_inconclusive_not_a_failure() -> None:
    result = integrity_restored([], [], True, "partial")
    assert result.status == "inconclusive" and not result.ok
    assert result.details.startswith("nothing diverged before the repair")


def test_unknown_truth_is_inconclusive() -> None:
    result = integrity_restored([3], None, True, "partial")
    assert result.status == "inconclusive"
    assert "no truth" in result.details


def test_the_truth_is_every_divergent_id_not_a_sample() -> None:
    from harness.repair import diverging_ids

    def row(pid: int, **changed: object) -> dict[str, object]:
        return {"id": pid, "name": "n", "category": "c", "price": 1, "stock": 1,
                "restricted_note": "", "version": 1, **changed}

    source = [row(i) for i in range(1, 301)]
    replica = [row(i, stock=2) if i % 2 else row(i) for i in range(1, 201)] + [row(999)]
    truth = diverging_ids(source, replica)
    assert truth == sorted([*range(1, 201, 2), *range(201, 301), 999])
    assert len(truth) == 201  # more than the 100 of each kind a convergence check shows
