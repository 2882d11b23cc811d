"""Unit tests for reference_services.consumer.integrity (bisection, spot checks, snapshot
verification) and the reference_services.bench.integrity benchmark that exercises it over SQLite."""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, Table

from harness.contract.dataset import REPLICATED_FIELDS, row_hash_parts
from reference_services.bench.integrity import run_integrity_bench, sql_range_hashes
from reference_services.common.db import make_engines
from reference_services.consumer import models as consumer_models
from reference_services.consumer.integrity import (
    FIRST_LEVEL,
    MAX_RANGES_PER_CALL,
    bisect_divergent,
    compare_rows,
    sample_ids,
    split_range,
    verify,
)
from reference_services.publisher import models as publisher_models


class FakeSide:
    """One side's dataset without materialising it: every id in [lo, lo + n) holds a default
    row, except `overrides`, which replace it with another row (a token) or remove it (None)
    and may also add ids outside the default region. Range answers are exact, with no hash
    collisions, so the tests check the search itself; the SQL test checks real hashes."""

    def __init__(self, lo: int, n: int, overrides: dict[int, str | None]) -> None:
        self.lo, self.hi = lo, lo + n
        self.overrides = overrides
        self.calls = 0
        self.largest_batch = 0

    def __call__(self, ranges: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        self.calls += 1
        self.largest_batch = max(self.largest_batch, len(ranges))
        return [self._answer(a, b) for a, b in ranges]

    def _answer(self, a: int, b: int) -> dict[str, Any]:
        count = max(0, min(b, self.hi) - max(a, self.lo))
        inside = sorted((i, t) for i, t in self.overrides.items() if a <= i < b)
        for i, token in inside:
            default = self.lo <= i < self.hi
            count += (token is not None) - default
        return {"lo": a, "hi": b, "count": count, "hash": repr(inside)}


def ceil_log(n: int, base: int) -> int:
    """ceil(log_base(n)) in integers, avoiding float error at exact powers."""
    depth, reach = 0, 1
    while reach < n:
        reach *= base
        depth += 1
    return depth


def bisect_fakes(lo: int, hi: int, source: dict[int, str | None],
                 replica: dict[int, str | None], n: int | None = None,
                 **kwargs: Any) -> tuple[tuple[int, ...], Any, FakeSide, FakeSide]:
    n = hi - lo if n is None else n
    ours, theirs = FakeSide(lo, n, source), FakeSide(lo, n, replica)
    result = bisect_divergent(ours, theirs, lo, hi, **kwargs)
    return result.divergent_ids, result, ours, theirs


@st.composite
def divergences(draw: st.DrawFn,
                ) -> tuple[int, int, int, int, dict[int, str | None], list[int]]:
    """(lo, n, extra, fanout, replica overrides, expected divergent ids): of the source's n
    rows some changed or missing on the replica, and the replica may hold rows in the
    `extra` ids past the source's last."""
    lo = draw(st.integers(0, 1000))
    n = draw(st.integers(1, 100_000))
    fanout = draw(st.sampled_from([2, 3, 7, 16, 64]))
    extra = draw(st.integers(0, 5))
    k = draw(st.integers(0, min(50, n + extra)))
    ids = draw(st.lists(st.integers(lo, lo + n + extra - 1), min_size=k, max_size=k,
                        unique=True))
    overrides: dict[int, str | None] = {}
    for i in ids:
        if i >= lo + n:
            overrides[i] = "extra"
        else:
            overrides[i] = draw(st.sampled_from(["changed", None]))
    return lo, n, extra, fanout, overrides, sorted(ids)


@given(divergences(), st.sampled_from([1, 3, FIRST_LEVEL]))
def test_bisection_recovers_exactly_the_divergent_ids_in_k_log_n(
        case: tuple[int, int, int, int, dict[int, str | None], list[int]],
        first_level: int) -> None:
    lo, n, extra, fanout, overrides, expected = case
    size = n + extra  # the search covers both sides' ids, as the snapshots' id_range give
    ours, theirs = FakeSide(lo, n, {}), FakeSide(lo, n, overrides)
    result = bisect_divergent(ours, theirs, lo, lo + size, fanout=fanout,
                              first_level=first_level)

    assert list(result.divergent_ids) == expected
    k = len(expected)
    assert result.comparisons <= k * fanout * ceil_log(size, fanout) + max(fanout,
                                                                           first_level)
    assert result.ranges_checked_per_level[0] == min(first_level, size)
    assert result.comparisons == sum(result.ranges_checked_per_level)
    # One batched call per level (no level here exceeds the batch limit) and both sides
    # asked the same number of times.
    assert result.round_trips == len(result.ranges_checked_per_level) == ours.calls
    assert theirs.calls == ours.calls
    assert len(result.ranges_checked_per_level) <= ceil_log(size, fanout) + 1


def test_identical_sides_cost_one_comparison() -> None:
    ids, result, _, _ = bisect_fakes(0, 1_000_000, {}, {})
    assert ids == ()
    assert (result.comparisons, result.round_trips) == (1, 1)
    assert result.ranges_checked_per_level == (1,)


@pytest.mark.parametrize(("lo", "hi"), [(0, 0), (10, 10), (10, 3)])
def test_empty_range_asks_nothing(lo: int, hi: int) -> None:
    ids, result, ours, theirs = bisect_fakes(lo, hi, {}, {5: "x"}, n=0)
    assert ids == ()
    assert (result.comparisons, result.round_trips, ours.calls, theirs.calls) == (0, 0, 0, 0)
    assert result.ranges_checked_per_level == ()


def test_every_row_divergent_in_a_small_range() -> None:
    replica: dict[int, str | None] = {i: "changed" for i in range(100, 140)}
    ids, result, _, _ = bisect_fakes(100, 140, {}, replica, fanout=4)
    assert ids == tuple(range(100, 140))
    # Nothing to prune: every range at every level differs, so every id is reached.
    assert result.ranges_checked_per_level[-1] == 40


def test_ids_only_on_one_side_are_found_on_either_side() -> None:
    # 7 and 300 exist only on the source, 1000 and 1001 only on the replica.
    source: dict[int, str | None] = {7: "a", 300: "b"}
    replica: dict[int, str | None] = {1000: "c", 1001: "d"}
    ids, _, _, _ = bisect_fakes(0, 1002, source, replica, n=0)
    assert ids == (7, 300, 1000, 1001)


def test_tombstone_on_one_side_is_a_missing_row() -> None:
    ids, _, _, _ = bisect_fakes(0, 500, {}, {250: None, 251: "changed"})
    assert ids == (250, 251)


@pytest.mark.parametrize("fanout", [3, 7, 16])
def test_size_not_divisible_by_fanout(fanout: int) -> None:
    replica: dict[int, str | None] = {0: "x", 511: "y", 1000: None, 1020: "z"}
    ids, result, _, _ = bisect_fakes(0, 1021, {}, replica, fanout=fanout)
    assert ids == (0, 511, 1000, 1020)
    assert result.comparisons <= 4 * fanout * ceil_log(1021, fanout) + fanout


@pytest.mark.parametrize("n", [1, 2, 5, 15])
def test_n_smaller_than_fanout(n: int) -> None:
    last = 40 + n - 1
    ids, result, _, _ = bisect_fakes(40, 40 + n, {}, {last: "changed"}, fanout=16)
    assert ids == (last,)
    # The root, then (for n > 1) the single ids in one step.
    assert result.ranges_checked_per_level == ((1,) if n == 1 else (1, n))


def test_leaf_size_enumerates_small_ranges_in_one_step() -> None:
    replica: dict[int, str | None] = {3: "x", 4000: None}
    deep, deep_result, _, _ = bisect_fakes(0, 4096, {}, replica, fanout=4)
    shallow, shallow_result, _, _ = bisect_fakes(0, 4096, {}, replica, fanout=4, leaf_size=64)
    assert deep == shallow == (3, 4000)
    assert shallow_result.round_trips < deep_result.round_trips


def test_levels_wider_than_a_call_are_chunked() -> None:
    # 60 divergent ids spread out at fanout 128 put 60 * 128 ranges on one level.
    replica: dict[int, str | None] = {i * 10_007: "x" for i in range(60)}
    ids, result, ours, theirs = bisect_fakes(0, 1_000_000, {}, replica, fanout=128)
    assert ids == tuple(sorted(replica))
    assert ours.largest_batch <= MAX_RANGES_PER_CALL
    assert result.round_trips > len(result.ranges_checked_per_level)
    assert ours.calls == theirs.calls == result.round_trips


def test_transport_answering_the_wrong_ranges_is_an_error() -> None:
    def short(ranges: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        return []

    def shifted(ranges: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
        return [{"lo": a + 1, "hi": b, "count": 0, "hash": ""} for a, b in ranges]

    fine = FakeSide(0, 10, {})
    with pytest.raises(ValueError, match="answered 0 ranges"):
        bisect_divergent(fine, short, 0, 10)
    with pytest.raises(ValueError, match="where 0-10 was asked"):
        bisect_divergent(shifted, fine, 0, 10)


def test_bad_parameters_are_rejected() -> None:
    fake = FakeSide(0, 10, {})
    with pytest.raises(ValueError, match="fanout"):
        bisect_divergent(fake, fake, 0, 10, fanout=1)
    with pytest.raises(ValueError, match="leaf_size"):
        bisect_divergent(fake, fake, 0, 10, leaf_size=0)
    with pytest.raises(ValueError, match="first_level"):
        bisect_divergent(fake, fake, 0, 10, first_level=0)


def test_a_wide_first_level_saves_the_levels_that_cover_everything() -> None:
    """Planted ids far apart: from the whole range, 16-way, the first three levels all
    differ nearly everywhere; a first level of FIRST_LEVEL pieces reaches that width at
    once, in fewer round trips."""
    planted: dict[int, str | None] = {i: "changed" for i in range(1_000, 1_000_000, 97_001)}
    narrow = bisect_fakes(0, 1_000_000, {}, planted)[1]
    wide = bisect_fakes(0, 1_000_000, {}, planted, first_level=FIRST_LEVEL)[1]
    assert wide.divergent_ids == narrow.divergent_ids == tuple(sorted(planted))
    assert wide.ranges_checked_per_level[0] == FIRST_LEVEL
    assert wide.round_trips == narrow.round_trips - 2


@pytest.mark.parametrize(("lo", "hi", "parts"), [(0, 10, 3), (5, 6, 16), (0, 100, 16),
                                                 (7, 7, 4), (0, 17, 16)])
def test_split_range_covers_without_gaps(lo: int, hi: int, parts: int) -> None:
    pieces = split_range(lo, hi, parts)
    assert len(pieces) == min(parts, max(0, hi - lo))
    assert all(b > a for a, b in pieces)
    if pieces:
        assert pieces[0][0] == lo and pieces[-1][1] == hi
        assert all(x[1] == y[0] for x, y in pairwise(pieces))
        sizes = [b - a for a, b in pieces]
        assert max(sizes) - min(sizes) <= 1


# --- spot checks -------------------------------------------------------------------------


def test_sample_ids_are_distinct_sorted_and_in_range() -> None:
    ids = sample_ids(random.Random(1), 100, 1_000_100, 500)
    assert len(set(ids)) == 500 and ids == sorted(ids)
    assert all(100 <= i < 1_000_100 for i in ids)
    assert sample_ids(random.Random(1), 100, 1_000_100, 500) == ids  # reproducible


def test_sample_ids_returns_everything_when_asked_for_more() -> None:
    assert sample_ids(random.Random(0), 3, 8, 50) == [3, 4, 5, 6, 7]
    assert sample_ids(random.Random(0), 8, 3, 5) == []
    with pytest.raises(ValueError):
        sample_ids(random.Random(0), 0, 10, -1)


def test_compare_rows_reports_changed_missing_and_extra_ids() -> None:
    source = [{"id": 1, "name": "a", "price": 1}, {"id": 2, "name": "b", "price": 2},
              {"id": 3, "name": "c", "price": 3}]
    replica = [{"id": 1, "name": "a", "price": 1}, {"id": 2, "name": "b", "price": 20},
               {"id": 4, "name": "d", "price": 4}]
    assert compare_rows(source, replica, ["name", "price"]) == [2, 3, 4]
    # A field not compared does not count.
    assert compare_rows(source, replica, ["name"]) == [3, 4]


# --- snapshot verification ---------------------------------------------------------------


def snap(count: int, categories: dict[str, int], digest: str) -> dict[str, Any]:
    return {"count": count, "categories": categories, "hash": digest, "id_range": [1, 9]}


def test_verify_in_sync() -> None:
    s = snap(1000, {"books": 600, "toys": 400}, "0123456789abcdef")
    summary = verify(s, dict(s))
    assert summary.in_sync
    assert summary.description == "in sync: 1000 rows, 2 categories, hash 0123456789abcdef"


def test_verify_everything_differs() -> None:
    summary = verify(snap(1000, {"books": 600, "toys": 400, "tools": 0}, "aa"),
                     snap(997, {"books": 599, "toys": 398}, "bb"))
    assert not summary.in_sync
    assert (summary.count_matches, summary.categories_match, summary.hash_matches) == (
        False, False, False)
    assert summary.differing_categories == ("books", "toys")
    assert summary.description == "count 1000 vs 997; 2 categories differ; hash differs"


def test_verify_changed_rows_only() -> None:
    summary = verify(snap(10, {"books": 10}, "aa"), snap(10, {"books": 10}, "bb"))
    assert summary.description == "count 10 matches; categories match; hash differs"


def test_verify_moved_between_categories() -> None:
    summary = verify(snap(10, {"books": 10}, "aa"), snap(10, {"books": 9, "toys": 1}, "aa"))
    assert summary.description == "count 10 matches; 2 categories differ; hash matches"
    assert summary.categories_match is False and summary.hash_matches


def test_verify_one_category() -> None:
    summary = verify(snap(1, {"books": 1}, "aa"), snap(0, {}, "bb"))
    assert summary.description == "count 1 vs 0; 1 category differs; hash differs"


# --- over SQLite with the real schemas and hashes ----------------------------------------


def _fields(i: int) -> dict[str, Any]:
    return {"name": f"product {i}", "category": ("books", "toys", "tools")[i % 3],
            "price": 100 + i, "stock": i % 50, "restricted_note": f"note-{i}", "version": 1}


def _insert(engine: Engine, table: Table, rows: dict[int, dict[str, Any]]) -> None:
    values = []
    for i, fields in rows.items():
        h1, h2 = row_hash_parts(i, fields)
        values.append({"id": i, **fields, "deleted": fields.get("deleted", False),
                       "h1": h1, "h2": h2})
    with engine.begin() as conn:
        conn.execute(table.insert(), [{k: v[k] for k in ("id", *REPLICATED_FIELDS,
                                                         "deleted", "h1", "h2")}
                                      for v in values])


def test_sql_backed_bisection_finds_planted_divergences(tmp_path: Path) -> None:
    source_engines = make_engines(f"sqlite:///{tmp_path / 'publisher.db'}")
    replica_engines = make_engines(f"sqlite:///{tmp_path / 'consumer.db'}")
    try:
        publisher_models.metadata.create_all(source_engines.writer)
        consumer_models.metadata.create_all(replica_engines.writer)
        rows = {i: _fields(i) for i in range(1, 401)}
        replica_rows = {i: dict(f) for i, f in rows.items()}
        replica_rows[57]["price"] += 1           # a misapplied update
        del replica_rows[211]                    # a create never applied
        replica_rows[399]["deleted"] = True      # a delete the source never made
        _insert(source_engines.writer, publisher_models.products, rows)
        _insert(replica_engines.writer, consumer_models.replica_products, replica_rows)

        result = bisect_divergent(
            sql_range_hashes(source_engines.reader, publisher_models.products),
            sql_range_hashes(replica_engines.reader, consumer_models.replica_products),
            1, 401, fanout=8)
        assert result.divergent_ids == (57, 211, 399)
        assert result.comparisons <= 3 * 8 * ceil_log(400, 8) + 8
    finally:
        for engines in (source_engines, replica_engines):
            engines.writer.dispose()
            engines.reader.dispose()


# --- the benchmark -----------------------------------------------------------------------


def test_integrity_bench_runs_on_a_small_dataset(tmp_path: Path) -> None:
    lines: list[str] = []
    results = run_integrity_bench(sizes=(2000,), divergent=(1, 5), work_dir=tmp_path,
                                  progress=lines.append)
    (size,) = results["sizes"]
    assert size["rows"] == 2000
    assert size["verify_s"] >= 0 and size["setup_s"] >= 0
    assert [run["k"] for run in size["bisection"]] == [1, 5]
    assert results["first_level"] == FIRST_LEVEL  # the verifier's search, as it runs
    for run in size["bisection"]:
        # The first level's ranges are ~8 ids wide here: split 16-way, they reach single
        # ids at the next level.
        assert 1 <= run["round_trips"] <= ceil_log(2005 // FIRST_LEVEL + 1, 16) + 1
        assert run["comparisons"] <= FIRST_LEVEL + run["k"] * 16 * ceil_log(2005, 16)
        assert run["seconds"] >= 0
    assert "comparisons" in lines[-1]
    assert list(tmp_path.iterdir()) == []  # the databases are cleaned up
