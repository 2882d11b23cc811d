"""Locating and describing divergence between the publisher's products and the replica.

A snapshot comparison (`verify`) says *whether* the two datasets agree; when they do not,
`bisect_divergent` finds *which* ids disagree without reading rows: both sides can hash any
id range cheaply (an aggregate over h1/h2, see harness/contract/dataset.py), so differing ranges are
split and re-hashed until single ids remain, and agreeing ranges are dropped. That costs
O(k log n) range comparisons for k divergent ids among n, in O(log n) round trips, because
every level of the search is asked of each side in one batched call.

`sample_ids` and `compare_rows` support the complementary spot check: fetch a random sample
of rows from both sides and compare fields directly, which does not rely on the stored
hashes being right.

Nothing here talks HTTP or SQL: the transport is passed in as callables, so the same code
runs against live services, in-process databases (the benchmark) and in-memory fakes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

RangeHashes = Callable[[Sequence[tuple[int, int]]], list[dict[str, Any]]]
"""One batched call: for each [lo, hi) asked, {"lo", "hi", "count", "hash"} of live rows."""

MAX_RANGES_PER_CALL = 4096
"""The services' limit on ranges per GET /ranges call (common/http.py `parse_bounds`)."""

FIRST_LEVEL = 256
"""Pieces the verifier's bisection starts from (see `bisect_divergent`): one scan of the
table answers them, where starting from the whole range and splitting 16-way took three
scans to reach ranges this narrow."""


@dataclass(frozen=True)
class BisectionResult:
    divergent_ids: tuple[int, ...]
    """Sorted ids whose live row differs, or exists live on one side only."""
    comparisons: int
    """Range pairs compared, the root included."""
    round_trips: int
    """Batched calls made to each side (the same number for both)."""
    ranges_checked_per_level: tuple[int, ...]
    """Range pairs compared at each depth, root first: shows where the work went."""


def split_range(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """[lo, hi) cut into at most `parts` contiguous, non-empty, near-equal pieces.

    Pieces differ in size by at most one, so the largest is ceil(size / parts) and the depth
    of the search stays ceil(log_parts(n)) even when the size does not divide evenly.
    """
    size = hi - lo
    parts = min(parts, size)
    if parts <= 0:
        return []
    edges = [lo + size * i // parts for i in range(parts + 1)]
    return list(pairwise(edges))


def _ask(side: RangeHashes, ranges: Sequence[tuple[int, int]], name: str,
         ) -> list[dict[str, Any]]:
    answers = side(ranges)
    # A transport that drops, reorders or truncates answers would silently pair the wrong
    # ranges and prune real divergence, so the pairing is checked rather than trusted.
    if len(answers) != len(ranges):
        raise ValueError(f"{name} answered {len(answers)} ranges for {len(ranges)} asked")
    for (lo, hi), answer in zip(ranges, answers, strict=True):
        if answer.get("lo", lo) != lo or answer.get("hi", hi) != hi:
            raise ValueError(f"{name} answered range {answer.get('lo')}-{answer.get('hi')} "
                             f"where {lo}-{hi} was asked")
    return answers


def _differing(source: RangeHashes, replica: RangeHashes, ranges: Sequence[tuple[int, int]],
               batch: int) -> tuple[list[tuple[int, int]], int]:
    """The ranges whose count or hash differs, and how many batched calls that took."""
    differing: list[tuple[int, int]] = []
    calls = 0
    for start in range(0, len(ranges), batch):
        chunk = ranges[start:start + batch]
        ours = _ask(source, chunk, "source")
        theirs = _ask(replica, chunk, "replica")
        calls += 1
        for bounds, a, b in zip(chunk, ours, theirs, strict=True):
            # Count as well as hash: equal sums over different row counts are a collision
            # the count rules out for free.
            if a["count"] != b["count"] or a["hash"] != b["hash"]:
                differing.append(bounds)
    return differing, calls


def bisect_divergent(source: RangeHashes, replica: RangeHashes, lo: int, hi: int,
                     fanout: int = 16, leaf_size: int = 1,
                     batch: int = MAX_RANGES_PER_CALL, first_level: int = 1,
                     ) -> BisectionResult:
    """Ids in [lo, hi) whose live rows differ between `source` and `replica`.

    Breadth-first: each level's ranges go to each side in one batched call (chunked to
    `batch` ranges), so round trips grow with the depth, log_fanout(n), not with the number
    of ranges. A differing range is split into `fanout` pieces; once a differing range is no
    larger than `leaf_size` it is split into single ids in one final step, which trades a few
    more comparisons for fewer levels (round trips) when latency dominates. Use [lo, hi)
    covering both sides' ids (the union of their snapshots' `id_range`) so rows present on
    one side only are inside it.

    `first_level` is how many pieces [lo, hi) is cut into for the first comparison (1: the
    whole range). A side answers a level in one statement that reads the rows inside its
    ranges, so the top levels, whose ranges still cover nearly every row, each cost a scan
    of the table however few ranges they hold: starting with FIRST_LEVEL pieces instead of
    one saves two of those scans for a few hundred more comparisons.
    """
    if fanout < 2:
        raise ValueError("fanout must be at least 2, or the search never narrows")
    if leaf_size < 1:
        raise ValueError("leaf_size must be at least 1")
    if not 1 <= batch <= MAX_RANGES_PER_CALL:
        raise ValueError(f"batch must be between 1 and {MAX_RANGES_PER_CALL}")
    if first_level < 1:
        raise ValueError("first_level must be at least 1")
    found: list[int] = []
    comparisons = round_trips = 0
    per_level: list[int] = []
    level = split_range(lo, hi, first_level)
    while level:
        differing, calls = _differing(source, replica, level, batch)
        comparisons += len(level)
        round_trips += calls
        per_level.append(len(level))
        level = []
        for a, b in differing:
            if b - a == 1:
                found.append(a)
            elif b - a <= leaf_size:
                level.extend(split_range(a, b, b - a))
            else:
                level.extend(split_range(a, b, fanout))
    return BisectionResult(divergent_ids=tuple(sorted(found)), comparisons=comparisons,
                           round_trips=round_trips,
                           ranges_checked_per_level=tuple(per_level))


def sample_ids(rng: random.Random, lo: int, hi: int, size: int) -> list[int]:
    """`size` distinct ids drawn uniformly from [lo, hi), sorted; all of them if fewer.

    The spot check compares actual field values, which catches a row whose stored h1/h2 was
    computed from the wrong values: the range hashes would agree and bisection miss it.
    """
    if size < 0:
        raise ValueError("size must not be negative")
    population = range(lo, max(lo, hi))
    if size >= len(population):
        return list(population)
    # random.sample over a range object never materialises the population.
    return sorted(rng.sample(population, size))


def compare_rows(source_rows: Iterable[Mapping[str, Any]],
                 replica_rows: Iterable[Mapping[str, Any]],
                 fields: Sequence[str]) -> list[int]:
    """Sorted ids present on one side only or differing in any of `fields`.

    Rows are keyed by their "id"; pass only live rows (as GET /products returns them), so a
    row deleted on one side only shows up as missing there.
    """
    ours = {int(row["id"]): row for row in source_rows}
    theirs = {int(row["id"]): row for row in replica_rows}
    differing = set(ours.keys() ^ theirs.keys())
    for product_id in ours.keys() & theirs.keys():
        a, b = ours[product_id], theirs[product_id]
        if any(a.get(f) != b.get(f) for f in fields):
            differing.add(product_id)
    return sorted(differing)


@dataclass(frozen=True)
class VerificationSummary:
    count_matches: bool
    categories_match: bool
    hash_matches: bool
    source_count: int
    replica_count: int
    differing_categories: tuple[str, ...]
    description: str
    """One line for logs and reports, e.g. "count 1000 vs 997; 2 categories differ; ..."."""

    @property
    def in_sync(self) -> bool:
        return self.count_matches and self.categories_match and self.hash_matches


def _plural(n: int, word: str, plural: str) -> str:
    return f"{n} {word if n == 1 else plural}"


def verify(source_snapshot: Mapping[str, Any], replica_snapshot: Mapping[str, Any],
           ) -> VerificationSummary:
    """Compare two snapshots (GET /snapshot, GET /replica/snapshot) on count, per-category
    counts and the dataset hash.

    The three are reported separately because together they hint at the kind of damage:
    equal counts with a differing hash mean changed rows rather than lost or extra ones, and
    the differing categories narrow down where to look before bisecting.
    """
    source_count = int(source_snapshot["count"])
    replica_count = int(replica_snapshot["count"])
    ours: Mapping[str, int] = source_snapshot.get("categories", {})
    theirs: Mapping[str, int] = replica_snapshot.get("categories", {})
    differing = tuple(sorted(c for c in ours.keys() | theirs.keys()
                             if ours.get(c, 0) != theirs.get(c, 0)))
    count_matches = source_count == replica_count
    hash_matches = source_snapshot["hash"] == replica_snapshot["hash"]
    if count_matches and not differing and hash_matches:
        description = (f"in sync: {_plural(source_count, 'row', 'rows')}, "
                       f"{_plural(len(ours), 'category', 'categories')}, "
                       f"hash {source_snapshot['hash']}")
    else:
        description = "; ".join([
            f"count {source_count} vs {replica_count}" if not count_matches
            else f"count {source_count} matches",
            f"{_plural(len(differing), 'category differs', 'categories differ')}"
            if differing else "categories match",
            "hash matches" if hash_matches else "hash differs",
        ])
    return VerificationSummary(count_matches=count_matches, categories_match=not differing,
                               hash_matches=hash_matches, source_count=source_count,
                               replica_count=replica_count, differing_categories=differing,
                               description=description)
