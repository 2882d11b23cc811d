"""Checks that rest on the harness's own observation (pure functions).

Witnesses (harness/observers): the broker tap, i.e. what the broker carried; the replica
read from the consumer's database file, i.e. what the consumer stored; and that file
sampled while the run went on. Testimony: the publisher's outbox (`published`), the
consumer's delivery log, its API, its resync reports. Every check judges testimony against
a witness, and every failure names both sides.

- acknowledged_writes_published: every write the publisher acknowledged reached the broker;
- tap_matches_outbox: the broker carried what the source holds, and all of it;
- queue_drained: the broker's own counters show the consumer's queue empty at the end;
- replica_matches_tap_model: the replica equals the one the harness computes from the
  tapped stream (full-state upserts, deletes, each stock delta exactly once);
- replica_api_matches_db: the consumer's API reports what its database file holds;
- version_consistency: every row sampled at version v equals the source's state at v;
- log_matches_observation: the consumer's log agrees with what the harness saw.

`divergent_by_tap` gives the ids whose tapped stream cannot produce the source's state:
the truth an integrity check is judged against when the consumer repairs by itself.

Where every reader of the event stream reads what a fault injects (Kafka), the tap reads
the harness's own messages too: `broker_carried` leaves them out, by what each fault
recorded it injected, before any check judges the system under test by the tap, and
`tap_saw_injection` tells whether the tap read them, as evidence the fault hit.
"""

from __future__ import annotations

import hashlib
import time
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol

from harness.checkers.base import CheckResult, inconclusive, sample
from harness.consumers import owner
from harness.contract import envelope as env
from harness.contract import outcomes
from harness.contract.dataset import REPLICATED_FIELDS

Row = Mapping[str, Any]
FIELDS = tuple(env.PRODUCT_FIELDS)  # a product's replicated fields but its version
# A fault that corrupts data is excused for rows written up to this long after its heal:
# batches already in flight, and the sampler's read interval.
CORRUPTION_SLACK_S = 1.0
# The window in which a logged delivery is named as the author of a sampled change: the
# batch was logged before it committed, and the change is read at the next sample.
ATTRIBUTION_S = 1.0


# -- folding event streams into product states ---------------------------------------------
@dataclass(frozen=True)
class ProductState:
    version: int
    deleted: bool
    # None: the stream cannot tell (a stock delta whose previous version it lacks).
    fields: Mapping[str, Any] | None


def _step(prev: ProductState | None, event: Row) -> ProductState:
    version = int(event["version"])
    if event["type"] == env.PRODUCT_UPSERTED:
        return ProductState(version, False, {f: event["payload"][f] for f in FIELDS})
    if event["type"] == env.PRODUCT_DELETED:
        return ProductState(version, True, prev.fields if prev else None)
    # StockAdjusted: a delta, applied once on top of the version just before it. Its
    # payload's own `stock` is the publisher's claim, never this model's input.
    if prev is None or prev.fields is None or prev.deleted or prev.version != version - 1:
        return ProductState(version, False, None)
    return ProductState(version, False, {**prev.fields,
                                         "stock": prev.fields["stock"]
                                         + event["payload"]["delta"]})


def _by_version(events: Iterable[Row]) -> list[Row]:
    return sorted(events, key=lambda e: (int(e["aggregate_id"]), int(e["version"])))


def fold(events: Iterable[Row], start: Mapping[int, ProductState] | None = None
         ) -> dict[int, ProductState]:
    """Each product's final state from a stream ordered per product by version, on top of
    `start` (versions at or below a product's start state are skipped)."""
    states = dict(start or {})
    for event in _by_version(events):
        pid = int(event["aggregate_id"])
        prev = states.get(pid)
        if prev is None or int(event["version"]) > prev.version:
            states[pid] = _step(prev, event)
    return states


def history(events: Iterable[Row]) -> dict[int, dict[int, ProductState]]:
    """Every product's state at every version the stream holds."""
    states: dict[int, dict[int, ProductState]] = defaultdict(dict)
    latest: dict[int, ProductState] = {}
    for event in _by_version(events):
        pid = int(event["aggregate_id"])
        prev = latest.get(pid)
        if prev is None or int(event["version"]) > prev.version:
            latest[pid] = states[pid][int(event["version"])] = _step(prev, event)
    return dict(states)


def tapped_events(tap: Iterable[Row]) -> list[Row]:
    """The valid events the tap recorded, each once (its first record)."""
    seen: dict[str, Row] = {}
    for record in tap:
        if record.get("event_id") is not None and record["event_id"] not in seen:
            seen[record["event_id"]] = record
    return list(seen.values())


# -- what the harness injected itself ------------------------------------------------------
def _injections(faults: Iterable[Row], every_reader: bool = True) -> list[Row]:
    """The `injected` records of faults (harness/faults/messages.py), those every reader
    reads (the tap included) unless `every_reader` is False."""
    return [f["injected"] for f in faults if f.get("injected")
            and (f["injected"].get("reaches_every_reader") or not every_reader)]


def _positions(tap: Sequence[Row]) -> dict[str, list[tuple[Any, ...]]]:
    """Per digest, the distinct places in the stream the tap read it at, in the order it
    first read them: (partition, offset) where the broker numbers its records (a record
    read again after a reconnect is one place), else each record is its own place."""
    places: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for index, record in enumerate(tap):
        place = (record["partition"], record["offset"]) if "offset" in record else (index,)
        if place not in places[record["digest"]]:
            places[record["digest"]].append(place)
    return places


def broker_carried(tap: Sequence[Row], faults: Iterable[Row]) -> list[Row]:
    """The tap's records less the messages faults injected where every reader reads them:
    what the system under test put on the broker. Each injected body takes away one place
    the tap read its digest at, the latest first, so an exact copy of a real event (a
    duplicate) leaves the original's record, and leaves none when the relay never put the
    original on the broker."""
    owed = Counter(d for record in _injections(faults) for d in record["digests"])
    if not owed:
        return list(tap)
    places = _positions(tap)
    dropped = {place for digest, n in owed.items() for place in places.get(digest, [])[-n:]}
    return [record for index, record in enumerate(tap)
            if ((record["partition"], record["offset"]) if "offset" in record else (index,))
            not in dropped]


def injected_events(faults: Iterable[Row]) -> list[Row]:
    """Valid events the harness made up and injected itself (stale re-deliveries under new
    event ids), whichever readers read them: the consumer may log them, and must."""
    return [event for record in _injections(faults, every_reader=False)
            for event in record.get("events", [])]


def tap_saw_injection(fault: Row, tap: Sequence[Row]) -> tuple[bool, str] | None:
    """Whether the tap read every message the fault injected where every reader reads
    them, and, for older versions produced again, read each after a newer version of its
    product; None when the tap is not meant to read them."""
    record = fault.get("injected")
    if not record or not record.get("reaches_every_reader") or not record["digests"]:
        return None
    places = _positions(tap)
    wanted = Counter(record["digests"])
    read = sum(min(n, len(places.get(digest, []))) for digest, n in wanted.items())
    text = (f"the broker tap read {read} of the {len(record['digests'])} messages the "
            "harness injected")
    events = record.get("events", [])
    if not events:
        return read == len(record["digests"]), text
    at = {r["digest"]: i for i, r in enumerate(tap)}  # where each was last read
    newer: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for index, r in enumerate(tap):
        if r.get("event_id") is not None:
            newer[str(r["aggregate_id"])].append((index, int(r["version"])))
    late = sum(1 for event, digest in zip(events, record["digests"], strict=True)
               if digest in at and any(i < at[digest] and v > int(event["version"])
                                       for i, v in newer[str(event["aggregate_id"])]))
    return (read == len(record["digests"]) and late == len(events),
            f"{text}, {late} of the {len(events)} older versions after a newer version of "
            "their product")


def _source_states(source: Iterable[Row]) -> dict[int, ProductState]:
    return {int(r["id"]): ProductState(int(r["version"]), False, {f: r[f] for f in FIELDS})
            for r in source}


def _differences(row: Row | None, state: ProductState | None) -> dict[str, tuple[Any, Any]]:
    """What differs between a replica row and a state, as (replica, expected) pairs; a
    product live on one side only differs in "live" alone. A missing row and a tombstone
    both stand for "not live"; so does a missing state."""
    live_row = row is not None and not row["deleted"]
    live_state = state is not None and not state.deleted
    if not live_state:
        if not live_row:
            return {}
        assert row is not None
        return {"live": (f"live at v{row['version']}", "absent" if state is None
                         else f"deleted at v{state.version}")}
    assert state is not None
    if row is None or not live_row:
        return {"live": ("absent" if row is None else f"deleted at v{row['version']}",
                         f"live at v{state.version}")}
    diffs = {}
    if row["version"] != state.version:
        diffs["version"] = (row["version"], state.version)
    if state.fields is not None:
        diffs.update({f: (row[f], state.fields[f]) for f in FIELDS
                      if row[f] != state.fields[f]})
    return diffs


def _shown(diffs: Mapping[str, tuple[Any, Any]], expected: str) -> str:
    """e.g. "the replica DB shows stock 62 where the tapped stream gives stock 57"."""
    if "live" in diffs:
        got, want = diffs["live"]
        return f"the replica DB has it {got} where {expected} has it {want}"
    return ("the replica DB shows " + ", ".join(f"{f} {got!r}" for f, (got, _) in diffs.items())
            + f" where {expected} gives "
            + ", ".join(f"{f} {want!r}" for f, (_, want) in diffs.items()))


def _describe(event: Row) -> str:
    detail = f", delta {event['payload']['delta']:+d}" if event.get("type") == \
        env.STOCK_ADJUSTED and isinstance(event.get("payload"), dict) else ""
    return (f"{str(event['event_id'])[:8]} ({event['type']} product {event['aggregate_id']} "
            f"v{event['version']}{detail})")


def _examples(items: Sequence[str], limit: int = 3) -> str:
    """The first few findings; " | " apart, as each one has commas and semicolons."""
    shown = " | ".join(items[:limit])
    return shown + (f" | ... ({len(items) - limit} more)" if len(items) > limit else "")


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def _log_story(pid: int, events: Sequence[Row], log: Mapping[str, Sequence[Row]],
               limit: int = 3) -> str:
    """What the consumer's log says about the last few events of one product."""
    mine = sorted((e for e in events if int(e["aggregate_id"]) == pid),
                  key=lambda e: int(e["version"]))[-limit:]
    if not mine:
        return "the consumer's log has no delivery of any event of it"
    parts = []
    for event in mine:
        said = Counter(d["outcome"] for d in log.get(event["event_id"], ()))
        parts.append(f"{_describe(event)} " + (", ".join(
            f"{o}" + (f" x{n}" if n > 1 else "") for o, n in sorted(said.items()))
            or "never logged"))
    return "the consumer's log says: " + "; ".join(parts)


def _by_event(deliveries: Iterable[Row]) -> dict[str, list[Row]]:
    log: dict[str, list[Row]] = defaultdict(list)
    for d in deliveries:
        if d.get("event_id"):
            log[d["event_id"]].append(d)
    return log


# -- what a scenario changed on purpose ----------------------------------------------------
@dataclass(frozen=True)
class Excuses:
    """What injected faults changed on purpose, from their records."""

    dropped: frozenset[int]  # sequences a relay fault withheld from the broker
    corrupted: frozenset[int]  # sequences a relay fault altered on the way
    corrupted_versions: frozenset[tuple[int, int]]  # the same, as (product, version)
    # While a fault that corrupts data without naming the events was live, per target.
    windows: tuple[tuple[str, float, float], ...]

    @classmethod
    def from_faults(cls, faults: Iterable[Row]) -> Excuses:
        dropped: set[int] = set()
        corrupted: set[tuple[int, int, int]] = set()
        windows = []
        for f in faults:
            relay = f.get("relay_fault") or {}
            dropped.update(int(d["sequence"]) for d in relay.get("dropped", []))
            named = relay.get("corrupted", [])
            corrupted.update((int(d["sequence"]), int(d["aggregate_id"]), int(d["version"]))
                             for d in named)
            if f.get("corrupts_data") and not named:
                windows.append((str(f.get("target", "")), float(f["at"]),
                                float(f["healed_at"])))
        return cls(frozenset(dropped), frozenset(s for s, _, _ in corrupted),
                   frozenset((p, v) for _, p, v in corrupted), tuple(windows))

    def windows_for(self, consumer: str, consumers: Sequence[str]) -> list[tuple[float, float]]:
        """Windows of faults that hit this consumer (its process, an instance or a link of
        it), or no consumer in particular."""
        return [(lo, hi) for target, lo, hi in self.windows
                if owner(target) == consumer or owner(target) not in consumers]


@dataclass(frozen=True)
class Repairs:
    """What a consumer's resyncs did, from its own reports (GET /resync)."""

    full_high_water_mark: int | None  # the last full resync's export was consistent at it
    rewritten: frozenset[int]  # ids a partial or automatic resync rewrote

    @classmethod
    def from_reports(cls, reports: Iterable[Row]) -> Repairs:
        high: int | None = None
        rewritten: set[int] = set()
        for report in reports:
            if report.get("kind") == "full" and report.get("high_water_mark") is not None:
                high = int(report["high_water_mark"])
            elif report.get("kind") != "full":
                rewritten.update(int(i) for i in report.get("changed_ids", []))
        return cls(high, frozenset(rewritten))


def _tap_gap(name: str, tap_status: Row | None) -> CheckResult | None:
    """Inconclusive when the tap could not see everything the broker carried."""
    if tap_status is None or tap_status.get("complete", True):
        return None
    why = [w for w, bad in (("its queue was not drained", not tap_status.get("drained")),
                            ("its queue vanished at the broker",
                             tap_status.get("subscription_lost")),
                            (f"{tap_status.get('overflow')} messages past its record limit",
                             tap_status.get("overflow"))) if bad]
    return inconclusive(name, "the broker tap may have missed events (" + "; ".join(why)
                        + "): nothing can be concluded from it")


# -- the checks ----------------------------------------------------------------------------
def acknowledged_writes_published(ops: Sequence[Row], tap: Sequence[Row],
                                  tap_status: Row | None, excuses: Excuses) -> CheckResult:
    name = "acknowledged_writes_published"
    gap = _tap_gap(name, tap_status)
    if gap is not None:
        return gap
    acked = [op for op in ops if op.get("ok")]
    seen = {r["event_id"] for r in tap if r.get("event_id")}
    anonymous = [op for op in acked if not op.get("event_id")]
    lost = [op for op in acked if op.get("event_id") and op["event_id"] not in seen
            and op.get("sequence") not in excuses.dropped]
    excused = sum(1 for op in acked if op.get("event_id") and op["event_id"] not in seen
                  and op.get("sequence") in excuses.dropped)
    if not lost and not anonymous:
        return CheckResult(name, True,
                           f"the broker tap saw the event of every one of the {len(acked)} "
                           "writes the publisher acknowledged"
                           + (f" ({excused} dropped on purpose by a relay fault)"
                              if excused else ""))
    parts = []
    if lost:
        shown = [f"write #{op.get('index')} {op.get('op')} product {op.get('product_id')} "
                 f"-> event {str(op['event_id'])[:8]} v{op.get('version')} "
                 f"seq {op.get('sequence')}" for op in lost]
        parts.append(f"lost updates: the publisher acknowledged {len(lost)} writes whose "
                     f"events the broker tap never saw among the {len(seen)} it recorded "
                     f"({sample(shown, 3)})")
    if anonymous:
        parts.append(f"{len(anonymous)} acknowledged writes carry no event_id, so nobody can "
                     "follow them to the broker")
    return CheckResult(name, False, "; ".join(parts),
                       {"lost_event_ids": [op["event_id"] for op in lost[:100]],
                        "writes_without_event_id": [op.get("index") for op in anonymous[:100]]})


def _encoded(event: Row) -> bytes:
    return env.from_event(dict(event)).encode()


def tap_matches_outbox(tap: Sequence[Row], tap_status: Row | None,
                       published: Sequence[Row], excuses: Excuses,
                       injected_left_out: int = 0) -> CheckResult:
    """Every tapped event is in the outbox with the same identity and content (content
    may differ only for events a relay fault said it corrupted); every outbox event was
    tapped unless a relay fault said it dropped it; and the publisher's own StockAdjusted
    events agree with its history (their `stock` = the previous stock + the delta).
    `tap` is what the system under test put on the broker (`broker_carried`);
    `injected_left_out` says how many records of the harness's own it lacks."""
    name = "tap_matches_outbox"
    gap = _tap_gap(name, tap_status)
    if gap is not None:
        return gap
    outbox = {e["event_id"]: e for e in published}
    digests = {eid: hashlib.sha256(_encoded(e)).hexdigest() for eid, e in outbox.items()}
    problems: list[str] = []
    unparseable = [r for r in tap if r.get("event_id") is None]
    if unparseable:
        problems.append(f"the broker tap saw {len(unparseable)} messages on the exchange that "
                        "are not valid envelopes ("
                        + sample([f"{r.get('unparseable')}: {r.get('body_head', '')[:40]!r}"
                                  for r in unparseable], 2) + ")")
    unknown = [r for r in tapped_events(tap) if r["event_id"] not in outbox]
    if unknown:
        problems.append(f"the broker carried {len(unknown)} events the publisher's outbox "
                        f"does not hold ({sample([_describe(r) for r in unknown], 3)})")
    differing: list[str] = []
    corrupted_seen: set[str] = set()
    for record in tap:
        source = outbox.get(record.get("event_id") or "")
        if source is None or record["digest"] == digests[source["event_id"]]:
            continue
        identity = [k for k in ("sequence", "aggregate_id", "version", "type")
                    if record[k] != source[k]]
        content = [k for k in ("payload", "occurred_at", "schema_version")
                   if record.get(k) != source.get(k)]
        if identity:
            differing.append(f"{_describe(source)} arrived as "
                             + ", ".join(f"{k} {record[k]!r}" for k in identity))
        elif content and int(source["sequence"]) in excuses.corrupted:
            corrupted_seen.add(source["event_id"])
        elif content:
            differing.append(f"{_describe(source)}: the broker carried "
                             + ", ".join(f"{k} {record.get(k)!r}" for k in content)
                             + " where the outbox holds "
                             + ", ".join(f"{source.get(k)!r}" for k in content))
        # Same content, other bytes: an encoding difference, not a different event.
    if differing:
        problems.append(f"{len(differing)} tapped messages differ from the outbox's event "
                        f"({sample(differing, 2)})")
    tapped = {r["event_id"] for r in tap if r.get("event_id")}
    never = [e for e in published if e["event_id"] not in tapped
             and int(e["sequence"]) not in excuses.dropped]
    if never:
        marked = sum(1 for e in never if e.get("sent_at") is not None)
        problems.append(f"the outbox holds {len(never)} events the broker tap never saw, "
                        f"{marked} of them marked sent by the relay "
                        f"({sample([_describe(e) for e in never], 3)})")
    claims = []
    states = history(published)
    for event in published:
        if event["type"] != env.STOCK_ADJUSTED:
            continue
        state = states.get(int(event["aggregate_id"]), {}).get(int(event["version"]))
        if state is not None and state.fields is not None \
                and state.fields["stock"] != event["payload"].get("stock"):
            claims.append(f"{_describe(event)} says stock {event['payload'].get('stock')}, "
                          f"its previous state plus the delta gives {state.fields['stock']}")
    if claims:
        problems.append(f"the publisher contradicts itself in {len(claims)} stock events "
                        f"({sample(claims, 2)})")
    if problems:
        return CheckResult(name, False, "; ".join(problems),
                           {"not_in_outbox": [r["event_id"] for r in unknown[:100]],
                            "never_tapped": [e["event_id"] for e in never[:100]],
                            "differing": differing[:100], "stock_claims": claims[:100]})
    return CheckResult(name, True,
                       f"the broker carried exactly the outbox's {len(published)} events"
                       + (f" but {len(excuses.dropped)} dropped on purpose"
                          if excuses.dropped else "")
                       + (f"; {len(corrupted_seen)} altered on the way as a relay fault "
                          "declared" if corrupted_seen else "")
                       + (f"; {injected_left_out} messages the harness injected itself "
                          "left out" if injected_left_out else ""))


def queue_drained(queue: Row | None, queue_error: str) -> CheckResult:
    name = "queue_drained"
    if queue is None:
        return inconclusive(name, "the broker's counters of the consumer's queue could not be "
                                  f"read at the end: {queue_error or 'no reason given'}")
    queue_name = queue["name"]
    ready, unacked = int(queue["ready"]), queue.get("unacked")
    how = f"(the broker's own counters, read with {queue['read_with']} in {queue['read_s']}s)"
    if ready or unacked:
        return CheckResult(name, False,
                           f"{queue_name} is not drained at the end: the broker holds {ready} "
                           f"ready and {unacked} unacknowledged messages, with "
                           f"{queue['consumers']} consumers attached {how}", dict(queue))
    return CheckResult(name, True,
                       f"{queue_name} drained: 0 ready, "
                       + ("0 unacknowledged" if unacked is not None
                          else "unacknowledged not readable")
                       + f", consumers attached: {queue['consumers']} {how}; delivered and "
                       "acknowledged totals are not compared with the consumer's log "
                       "(RabbitMQ counts them only in its management plugin)", dict(queue))


def expected_replica(tap: Sequence[Row], published: Sequence[Row], repairs: Repairs
                     ) -> dict[int, ProductState]:
    """The replica a consumer must hold: the tapped stream folded per product by version.
    After a full resync, the model starts from the source's state at that export's
    high-water mark H (the export is consistent with it) and folds only what the broker
    carried after H."""
    events = tapped_events(tap)
    high = repairs.full_high_water_mark
    if high is None:
        return fold(events)
    start = fold(e for e in published if int(e["sequence"]) <= high)
    return fold((e for e in events if int(e["sequence"]) > high), start)


def replica_matches_tap_model(tap: Sequence[Row], tap_status: Row | None,
                              published: Sequence[Row], source: Sequence[Row],
                              replica_db: Sequence[Row], deliveries: Sequence[Row],
                              repairs: Repairs, excuses: Excuses) -> CheckResult:
    """The replica in the database file equals the model of the tapped stream. A product
    may equal the source instead when the model cannot tell (a delta whose previous
    version the broker never carried), when a relay fault dropped or altered one of its
    events, or when a resync rewrote it."""
    name = "replica_matches_tap_model"
    gap = _tap_gap(name, tap_status)
    if gap is not None:
        return gap
    model = expected_replica(tap, published, repairs)
    truth = _source_states(source)
    rows = {int(r["id"]): r for r in replica_db}
    touched = {int(e["aggregate_id"]) for e in published
               if int(e["sequence"]) in excuses.dropped | excuses.corrupted}
    events = tapped_events(tap)
    log = _by_event(deliveries)
    wrong: list[str] = []
    counterexample: dict[str, Any] = {}
    via_source = 0
    for pid in sorted(model.keys() | rows.keys()):
        state, row = model.get(pid), rows.get(pid)
        diffs = _differences(row, state)
        undetermined = state is not None and not state.deleted and state.fields is None
        if not diffs and not undetermined:
            continue
        if (undetermined or pid in touched or pid in repairs.rewritten) \
                and not _differences(row, truth.get(pid)):
            via_source += 1
            continue
        if state is None:
            assert row is not None
            shown = (f"the replica DB holds it live at v{row['version']}, but the broker "
                     "never carried any event of it")
        elif undetermined:
            diffs = _differences(row, truth.get(pid))
            shown = _shown(diffs, "the source (the tapped stream cannot tell)")
        else:
            shown = _shown(diffs, "the tapped stream")
        wrong.append(f"product {pid}: {shown}; {_log_story(pid, events, log)}")
        counterexample[str(pid)] = {k: {"replica": got, "expected": want}
                                    for k, (got, want) in diffs.items()}
    if wrong:
        return CheckResult(name, False,
                           f"the replica in the consumer's database differs from the model of "
                           f"what the broker carried for {len(wrong)} products: "
                           f"{_examples(wrong)}", dict(list(counterexample.items())[:100]))
    high = repairs.full_high_water_mark
    start = f"from {len(events)} tapped events" if high is None else (
        f"from the source's state at the full resync's high-water mark {high}, then the "
        f"{sum(1 for e in events if int(e['sequence']) > high)} tapped events after it")
    return CheckResult(name, True,
                       f"the replica in the consumer's database equals the model computed "
                       f"{start} ({len(model)} products)"
                       + (f"; {via_source} products equal the source where the stream "
                          "cannot tell or a fault or resync changed them" if via_source
                          else ""))


def replica_api_matches_db(replica_api: Sequence[Row], replica_db: Sequence[Row]
                           ) -> CheckResult:
    name = "replica_api_matches_db"
    api = {int(r["id"]): r for r in replica_api}
    db = {int(r["id"]): r for r in replica_db if not r["deleted"]}
    only_api, only_db = sorted(api.keys() - db.keys()), sorted(db.keys() - api.keys())
    differing = [f"product {pid}: " + ", ".join(
        f"{f} {api[pid][f]!r} in the API, {db[pid][f]!r} in the DB" for f in REPLICATED_FIELDS
        if api[pid][f] != db[pid][f]) for pid in sorted(api.keys() & db.keys())
        if any(api[pid][f] != db[pid][f] for f in REPLICATED_FIELDS)]
    if not (only_api or only_db or differing):
        return CheckResult(name, True, f"the consumer's API reports exactly the {len(db)} "
                                       "live rows its database file holds")
    parts = []
    if only_api:
        parts.append(f"the API reports {len(only_api)} products the database file does not "
                     f"hold live ({sample(only_api)})")
    if only_db:
        parts.append(f"the database file holds {len(only_db)} live products the API does not "
                     f"report ({sample(only_db)})")
    if differing:
        parts.append(f"{len(differing)} rows differ ({sample(differing, 3)})")
    return CheckResult(name, False, "the consumer's API and its database file disagree: "
                       + "; ".join(parts),
                       {"only_api": only_api[:100], "only_db": only_db[:100],
                        "differing": differing[:100]})


def _inconsistency(row: Row, versions: Mapping[int, ProductState]) -> str:
    """Why a row read at its version is not the source's state at that version ("" if
    it is). A tombstone keeps the version at which the consumer learned of the delete,
    which may be older than the delete itself (a resync found the product gone)."""
    version = int(row["version"])
    if row["deleted"]:
        if any(s.deleted and v >= version for v, s in versions.items()):
            return ""
        return f"the replica DB shows it deleted at v{version}; the source never deleted it " \
               f"at or after v{version}"
    state = versions.get(version)
    if state is None:
        return f"the replica DB shows v{version}, a version the source's outbox never had"
    if state.deleted:
        return f"the replica DB shows it live at v{version}; the source deleted it at v{version}"
    if state.fields is None:
        return ""
    diffs = {f: (row[f], state.fields[f]) for f in FIELDS if row[f] != state.fields[f]}
    return _shown(diffs, f"the source's outbox at v{version}") if diffs else ""


def _equals_known_state(row: Row, versions: Mapping[int, ProductState]) -> bool:
    """The row is a state the stream fully determines at its version (not one it cannot
    tell, after a gap)."""
    state = versions.get(int(row["version"]))
    return state is not None and (state.deleted or state.fields is not None) \
        and not _inconsistency(row, versions)


def version_consistency(samples: Sequence[Row], sample_reads: Sequence[float],
                        published: Sequence[Row], tap: Sequence[Row],
                        deliveries: Sequence[Row], excuses: Excuses,
                        windows: Sequence[tuple[float, float]]) -> CheckResult:
    """Every row the sampler read at version v equals the source's state at v (folded from
    the outbox, whose events the tap cross-checks). Excused: rows of events a relay fault
    declared it corrupted, and later rows of those products that equal what the broker
    carried at their version (the consumer applied faithfully what it was sent; the
    sampler may never have seen the corrupted version itself); rows written while a fault
    that corrupts data was live, and later rows of those products until one equals the
    source again."""
    name = "version_consistency"
    if not sample_reads:
        return inconclusive(name, "the sampler never read the replica during the run")
    source = history(published)
    carried = history(tapped_events(tap))
    by_product: dict[int, list[Row]] = defaultdict(list)
    for row in sorted(samples, key=lambda r: r["t"]):
        by_product[int(row["id"])].append(row)
    log = _log_by_product(deliveries)
    first_corrupted: dict[int, int] = {}
    for pid, version in excuses.corrupted_versions:
        first_corrupted[pid] = min(version, first_corrupted.get(pid, version))
    wrong: list[str] = []
    excused = 0
    for pid, rows in by_product.items():
        tainted = False
        for index, row in enumerate(rows):
            why = _inconsistency(row, source.get(pid, {}))
            if not why:
                tainted = False
                continue
            version = int(row["version"])
            as_carried = version >= first_corrupted.get(pid, version + 1) \
                and _equals_known_state(row, carried.get(pid, {}))
            if tainted or as_carried or (pid, version) in excuses.corrupted_versions or any(
                    lo <= row["t"] <= hi + CORRUPTION_SLACK_S for lo, hi in windows):
                tainted = True
                excused += 1
                continue
            since = rows[index - 1]["t"] if index else row["t"] - ATTRIBUTION_S
            wrong.append(f"product {pid} read at {_clock(row['t'])}: {why}"
                         + _carried_note(carried.get(pid, {}).get(version),
                                         source.get(pid, {}).get(version))
                         + _log_between(log.get(pid, []), since - ATTRIBUTION_S, row["t"]))
    reads = f"{len(sample_reads)} reads of the replica DB"
    if wrong:
        return CheckResult(name, False,
                           f"{len(wrong)} rows read during the run were not the source's "
                           f"state at their version [{reads}]: {_examples(wrong)}",
                           {"inconsistent": wrong[:100]})
    return CheckResult(name, True,
                       f"every one of {len(samples)} row states read during the run "
                       f"({reads}) equals the source's state at its version"
                       + (f"; {excused} written while a fault corrupted data on purpose"
                          if excused else ""))


def _carried_note(carried: ProductState | None, source: ProductState | None) -> str:
    if carried is None or source is None:
        return ""
    return " (the broker tap carried the same)" if carried == source else \
        " (the broker tap carried something else at that version)"


def _log_by_product(deliveries: Iterable[Row]) -> dict[int, list[Row]]:
    by_product: dict[int, list[Row]] = defaultdict(list)
    for d in deliveries:
        if d.get("aggregate_id") is not None and str(d["aggregate_id"]).isdigit():
            by_product[int(d["aggregate_id"])].append(d)
    return by_product


def _log_between(log: Sequence[Row], after: float, until: float) -> str:
    near = [d for d in log if after < float(d["committed_at"]) <= until][-3:]
    if not near:
        return "; the consumer's log shows no delivery of it just before"
    return "; the consumer's log just before: " + ", ".join(
        f"{str(d['event_id'])[:8]} ({d['type']} v{d['version']}) {d['outcome']} at "
        f"{_clock(float(d['committed_at']))}" for d in near)


def _state_at(changes: Sequence[Row], times: Sequence[float], at: float) -> Row | None:
    """The row as the sampler last saw it at or before `at` (None: not there yet)."""
    index = bisect_right(times, at)
    return changes[index - 1] if index else None


def log_matches_observation(deliveries: Sequence[Row], tap: Sequence[Row],
                            published: Sequence[Row], replica_db: Sequence[Row],
                            samples: Sequence[Row], sample_reads: Sequence[float],
                            rewritten: frozenset[int] = frozenset(),
                            injected: Sequence[Row] = ()) -> CheckResult:
    """The consumer's log, cross-checked with what the harness saw:
    - each logged event is the event the broker carried (same product, version, type), or
      one the publisher's outbox holds (a catch-up read from its API);
    - an event logged as handled (applied, stale, resynced, deduplicated) left the replica
      at its version or newer: versions never go back, so the final row shows it;
    - an event logged "stale" found the row at its version or newer: the first sample read
      after that delivery must show it;
    - a stock delta logged "deduplicated" changed nothing: no sampled row changed stock by
      it without a new version (`rewritten`: ids a resync rewrote, left out).
    `injected`: events a fault made up and put on the broker itself (injected_events),
    known like the broker's, whatever the tap read of them."""
    name = "log_matches_observation"
    carried = {e["event_id"]: e for e in tapped_events(tap)}
    known = {e["event_id"]: e for e in published} | carried \
        | {e["event_id"]: e for e in injected}
    rows = {int(r["id"]): r for r in replica_db}
    disagreements: list[str] = []
    judged: set[str] = set()
    for d in deliveries:
        eid = d.get("event_id")
        if not eid or d["outcome"] == outcomes.DEAD_LETTERED:
            continue
        event = known.get(eid)
        if event is None:
            disagreements.append(f"the consumer's log says it {d['outcome']} event "
                                 f"{str(eid)[:8]} (product {d.get('aggregate_id')} "
                                 f"v{d.get('version')}), which neither the broker tap nor the "
                                 "publisher's outbox ever saw, nor did the harness inject "
                                 "it")
            continue
        off = [k for k in ("aggregate_id", "version", "type") if d.get(k) != event[k]]
        if off:
            disagreements.append(f"the broker tap saw {_describe(event)}; the consumer's log "
                                 "records it as " + ", ".join(f"{k} {d.get(k)!r}" for k in off))
        if eid in judged:
            continue
        judged.add(eid)
        row = rows.get(int(event["aggregate_id"]))
        if row is None or int(row["version"]) < int(event["version"]):
            disagreements.append(
                f"the broker tap saw {_describe(event)}; the consumer's log says it was "
                f"{d['outcome']}, but the replica DB ends with product {event['aggregate_id']}"
                + (" absent" if row is None else f" at v{row['version']}"))
    disagreements.extend(_stale_claims(deliveries, known, samples, sample_reads))
    disagreements.extend(_dedupe_claims(deliveries, known, samples, rewritten))
    if disagreements:
        return CheckResult(name, False,
                           f"the consumer's log contradicts what the harness observed in "
                           f"{len(disagreements)} places: {_examples(disagreements)}",
                           {"disagreements": disagreements[:100]})
    return CheckResult(name, True,
                       f"the consumer's log of {len(deliveries)} deliveries agrees with the "
                       f"broker tap, the replica DB and {len(sample_reads)} sample reads")


def _stale_claims(deliveries: Sequence[Row], known: Mapping[str, Row],
                  samples: Sequence[Row], reads: Sequence[float]) -> list[str]:
    changes: dict[int, list[Row]] = defaultdict(list)
    for row in sorted(samples, key=lambda r: r["t"]):
        changes[int(row["id"])].append(row)
    times = {pid: [r["t"] for r in rows] for pid, rows in changes.items()}
    # A delivery's committed_at is when its batch began: the batch may be stale against
    # its own earlier messages and commits later. The next batch begins after that commit
    # (batches apply one at a time), so every read from then on must show the version
    # that made the event stale (versions only grow).
    batches = sorted({float(d["committed_at"]) for d in deliveries})
    found = []
    for d in deliveries:
        event = known.get(d.get("event_id") or "")
        if d["outcome"] != outcomes.STALE or event is None:
            continue
        later = bisect_right(batches, float(d["committed_at"]))
        if later == len(batches):
            continue  # the last batch: the final replica judges it
        after = bisect_right(reads, batches[later])
        if after == len(reads):
            continue  # the sampler had stopped: nothing to compare with
        pid, version = int(event["aggregate_id"]), int(event["version"])
        seen = _state_at(changes.get(pid, []), times.get(pid, []), reads[after])
        if seen is None or int(seen["version"]) < version:
            found.append(f"the broker tap saw {_describe(event)}; the consumer's log says it "
                         f"was stale at {_clock(float(d['committed_at']))}, but the replica "
                         f"DB read at {_clock(reads[after])}, after that batch committed, "
                         f"shows product {pid} "
                         + ("absent" if seen is None else f"at v{seen['version']}"))
    return found


def _dedupe_claims(deliveries: Sequence[Row], known: Mapping[str, Row],
                   samples: Sequence[Row], rewritten: frozenset[int]) -> list[str]:
    claims: dict[int, list[tuple[Row, Row]]] = defaultdict(list)
    for d in deliveries:
        event = known.get(d.get("event_id") or "")
        if d["outcome"] == outcomes.DEDUPLICATED and event is not None \
                and event["type"] == env.STOCK_ADJUSTED:
            claims[int(event["aggregate_id"])].append((d, event))
    changes: dict[int, list[Row]] = defaultdict(list)
    for row in sorted(samples, key=lambda r: r["t"]):
        if int(row["id"]) in claims and int(row["id"]) not in rewritten:
            changes[int(row["id"])].append(row)
    found = []
    for pid, rows in changes.items():
        for before, after in pairwise(rows):
            if before["version"] != after["version"] or before["deleted"] or after["deleted"] \
                    or before["stock"] == after["stock"]:
                continue
            moved = int(after["stock"]) - int(before["stock"])
            near = [(d, e) for d, e in claims[pid]
                    if before["t"] - ATTRIBUTION_S < float(d["committed_at"]) <= after["t"]]
            # The claims the move is made of: one whose delta it is, or all of them.
            single = [(d, e) for d, e in near if int(e["payload"]["delta"]) == moved][:1]
            if not single and moved != sum(int(e["payload"]["delta"]) for _, e in near):
                continue
            near = single or near
            if near:
                found.append(
                    f"the replica DB showed product {pid}'s stock go {before['stock']} -> "
                    f"{after['stock']} at v{after['version']} without a new version (read at "
                    f"{_clock(before['t'])} and {_clock(after['t'])}); the consumer's log "
                    "says " + ", ".join(f"{_describe(e)} was deduplicated at "
                                        f"{_clock(float(d['committed_at']))}" for d, e in near))
    return found


def divergent_by_tap(tap_records: Sequence[Row], source_rows: Sequence[Row]) -> list[int]:
    """Ids where what the broker carried cannot produce the source's state: the stream's
    fold differs from the source row, lacks a delete the source made, or cannot tell (a
    stock delta whose previous version never reached the broker). These are the ids a
    consumer that applies exactly what it is sent must repair from the source."""
    model = fold(tapped_events(tap_records))
    truth = _source_states(source_rows)
    return sorted(pid for pid in model.keys() | truth.keys()
                  if _model_diverges(model.get(pid), truth.get(pid)))


def _model_diverges(state: ProductState | None, truth: ProductState | None) -> bool:
    if truth is None:
        return state is not None and not state.deleted
    return state is None or state.deleted or state.fields is None or \
        state.version != truth.version or dict(state.fields) != dict(truth.fields or {})


class ObservedConsumer(Protocol):
    """What the runner observed of one consumer (harness.collected.ConsumerObservation)."""

    @property
    def replica_db(self) -> list[dict[str, Any]]: ...
    @property
    def samples(self) -> list[dict[str, Any]]: ...
    @property
    def sample_reads(self) -> list[float]: ...
    @property
    def queue(self) -> dict[str, Any] | None: ...
    @property
    def queue_error(self) -> str: ...
    @property
    def resyncs(self) -> list[dict[str, Any]]: ...


NamedCheck = tuple[str, Callable[[], CheckResult]]


def consumer_checks(consumer: str, consumers: Sequence[str], seen: ObservedConsumer,
                    tap: Sequence[Row], tap_status: Row | None,
                    published: Sequence[Row], source: Sequence[Row],
                    deliveries: Sequence[Row], replica_api: Sequence[Row],
                    excuses: Excuses, injected: Sequence[Row] = ()) -> list[NamedCheck]:
    """The observed checks of one consumer, each as (name, thunk) so the caller can run
    each one safely. `tap`: what the system under test put on the broker
    (`broker_carried`); `injected`: the events the harness made up (`injected_events`)."""
    repairs = Repairs.from_reports(seen.resyncs)
    windows = excuses.windows_for(consumer, consumers)
    return [
        ("queue_drained", lambda: queue_drained(seen.queue, seen.queue_error)),
        ("replica_matches_tap_model", lambda: replica_matches_tap_model(
            tap, tap_status, published, source, seen.replica_db, deliveries, repairs,
            excuses)),
        ("replica_api_matches_db", lambda: replica_api_matches_db(replica_api,
                                                                  seen.replica_db)),
        ("version_consistency", lambda: version_consistency(
            seen.samples, seen.sample_reads, published, tap, deliveries, excuses, windows)),
        ("log_matches_observation", lambda: log_matches_observation(
            deliveries, tap, published, seen.replica_db, seen.samples, seen.sample_reads,
            repairs.rewritten, injected)),
    ]
