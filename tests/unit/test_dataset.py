"""Unit tests for harness.contract.dataset: the order-independent dataset hash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.contract.dataset import (
    REPLICATED_FIELDS,
    canonical_row,
    dataset_hash,
    row_digest,
    summarize,
)


def row(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"name": "red mini 1", "category": "books", "price": 1999,
                              "stock": 5, "restricted_note": "supplier-cost-1", "version": 1}
    values.update(overrides)
    return values


ROWS: list[tuple[int, dict[str, Any]]] = [
    (1, row()),
    (2, row(name="blue max 2", category="games", price=250, stock=0, version=4)),
    (3, row(name="eco pro 3", category="books", price=100_000, stock=499, version=2)),
    (10, row(name="smart 10", category="toys", restricted_note="", version=9)),
]

_text = st.text(alphabet="abcXYZ 09é✓'\"\x1f", max_size=12)

rows_strategy = st.dictionaries(
    keys=st.integers(min_value=1, max_value=10**6),
    values=st.fixed_dictionaries({
        "name": _text,
        "category": st.sampled_from(["books", "games", "toys"]),
        "price": st.integers(min_value=0, max_value=10**7),
        "stock": st.integers(min_value=-100, max_value=10**4),
        "restricted_note": _text,
        "version": st.integers(min_value=1, max_value=10**6),
    }),
    max_size=30,
).map(lambda d: sorted(d.items()))


def test_hash_format_is_16_hex_digits() -> None:
    digest = dataset_hash(ROWS)
    assert len(digest) == 16
    int(digest, 16)


def test_empty_dataset_hash_is_zero() -> None:
    assert dataset_hash([]) == "0" * 16


def test_hash_is_the_sums_of_both_digest_halves_mod_2_31() -> None:
    halves = [((row_digest(pid, r) >> 33) & (2**31 - 1), row_digest(pid, r) & (2**31 - 1))
              for pid, r in ROWS]
    s1 = sum(h for h, _ in halves) % 2**31
    s2 = sum(h for _, h in halves) % 2**31
    assert dataset_hash(ROWS) == f"{s1:08x}{s2:08x}"


def test_sql_summary_equals_python_summary(tmp_path: Any) -> None:
    from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, create_engine

    from harness.contract.dataset import row_hash_parts
    from reference_services.common.rowhash_sql import range_summary, table_summary

    meta = MetaData()
    table = Table("t", meta, Column("id", Integer, primary_key=True),
                  Column("category", String), Column("deleted", Boolean),
                  Column("h1", Integer), Column("h2", Integer))
    engine = create_engine(f"sqlite:///{tmp_path}/t.db")
    meta.create_all(engine)
    with engine.begin() as conn:
        for pid, row in ROWS:
            h1, h2 = row_hash_parts(pid, row)
            conn.execute(table.insert().values(id=pid, category=row["category"],
                                               deleted=False, h1=h1, h2=h2))
        conn.execute(table.insert().values(id=10**6, category="gone", deleted=True,
                                           h1=1, h2=2))
        assert table_summary(conn, table) == summarize(ROWS)
        first = sorted(pid for pid, _ in ROWS)[0]
        part = range_summary(conn, table, 0, first + 1)
        assert part["count"] == 1
        assert part["hash"] == dataset_hash([(pid, r) for pid, r in ROWS if pid == first])


def test_hash_ignores_fields_that_are_not_replicated() -> None:
    with_extra = [(pid, {**r, "deleted": False, "id": pid}) for pid, r in ROWS]
    assert dataset_hash(with_extra) == dataset_hash(ROWS)


@given(rows_strategy, st.randoms(use_true_random=False))
def test_hash_is_independent_of_row_order(rows: list[tuple[int, dict[str, Any]]],
                                          rnd: Any) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert dataset_hash(shuffled) == dataset_hash(rows)


@given(st.permutations(ROWS))
def test_hash_is_independent_of_row_order_for_fixed_rows(
        rows: list[tuple[int, dict[str, Any]]]) -> None:
    assert dataset_hash(rows) == dataset_hash(ROWS)


CHANGES: list[tuple[str, Any]] = [
    ("name", "red mini 1 "),
    ("category", "games"),
    ("price", 2000),
    ("price", "1999"),  # same digits, different type: repr differs
    ("stock", 6),
    ("stock", -5),
    ("restricted_note", "supplier-cost-2"),
    ("version", 2),
]


def test_changes_cover_every_replicated_field() -> None:
    assert {f for f, _ in CHANGES} == set(REPLICATED_FIELDS)


@pytest.mark.parametrize(("field", "value"), CHANGES)
@pytest.mark.parametrize("index", range(len(ROWS)))
def test_hash_changes_when_one_field_of_one_row_changes(index: int, field: str,
                                                        value: Any) -> None:
    changed = [(pid, dict(r)) for pid, r in ROWS]
    if changed[index][1][field] == value:
        value = f"{value}-changed"
    changed[index][1][field] = value
    assert dataset_hash(changed) != dataset_hash(ROWS)


def test_hash_changes_when_a_row_moves_to_another_id() -> None:
    moved = [(pid if pid != 10 else 11, r) for pid, r in ROWS]
    assert dataset_hash(moved) != dataset_hash(ROWS)


def test_hash_changes_when_a_row_is_missing_or_extra() -> None:
    assert dataset_hash(ROWS[:-1]) != dataset_hash(ROWS)
    assert dataset_hash([*ROWS, (11, row())]) != dataset_hash(ROWS)


@given(rows_strategy, st.data())
def test_hash_changes_when_a_generated_row_changes(rows: list[tuple[int, dict[str, Any]]],
                                                  data: st.DataObject) -> None:
    if not rows:
        return
    index = data.draw(st.integers(min_value=0, max_value=len(rows) - 1))
    field = data.draw(st.sampled_from(REPLICATED_FIELDS))
    changed = [(pid, dict(r)) for pid, r in rows]
    old = changed[index][1][field]
    changed[index][1][field] = old + 1 if isinstance(old, int) else old + "!"
    assert dataset_hash(changed) != dataset_hash(rows)


def test_canonical_row_separates_fields_unambiguously() -> None:
    # "a" + "b|c" must not collide with "a|b" + "c" when fields are joined.
    one = canonical_row(1, row(name="a\x1fb", category="c"))
    two = canonical_row(1, row(name="a", category="b\x1fc"))
    assert one != two


def test_summarize_counts_rows_and_categories() -> None:
    summary = summarize(ROWS)
    assert summary["count"] == 4
    assert summary["categories"] == {"books": 2, "games": 1, "toys": 1}
    assert list(summary["categories"]) == ["books", "games", "toys"]
    assert summary["hash"] == dataset_hash(ROWS)


def test_summarize_of_nothing() -> None:
    assert summarize([]) == {"count": 0, "categories": {}, "hash": "0" * 16}


@given(rows_strategy)
def test_summarize_agrees_with_dataset_hash_and_len(
        rows: list[tuple[int, dict[str, Any]]]) -> None:
    summary = summarize(iter(rows))
    assert summary["count"] == len(rows)
    assert sum(summary["categories"].values()) == len(rows)
    assert summary["hash"] == dataset_hash(rows)
