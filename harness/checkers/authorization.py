"""Restricted data stays with the consumers granted it (harness/contract/grants.py).

- `restricted_data_contained` (every scenario, every consumer not granted a restricted
  field): no restricted value in its replica as the harness read it from the database file
  (at the end, and every sample taken during the run), and none inside an event on the
  broker (every subscriber's queue gets every event). A failure names the field, the
  consumer, and the path the value took: the events, its full resync's export, its partial
  resync's batch fetch, or another API read.
- `credentials_enforced` (scenarios that probe with `unauthorized_calls`): every call
  without a credential or with a wrong one was refused and changed nothing.
- The views: what a consumer granted `granted` must hold is the source's rows and events
  as it may see them, so the other checks compare its replica with `source_view`,
  `events_view` and `tap_view` instead of the admin's full rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.checkers.base import CheckResult, inconclusive, sample
from harness.checkers.observed import tapped_events
from harness.contract import envelope as env
from harness.contract.grants import RESTRICTED_FIELDS, WITHHELD, leaked, redact

Row = Mapping[str, Any]
NAME = "restricted_data_contained"


# -- views ---------------------------------------------------------------------------------
def source_view(source: Iterable[Row], granted: Iterable[str]) -> list[dict[str, Any]]:
    """The source's rows as a consumer granted `granted` must hold them."""
    allowed = tuple(granted)
    if set(allowed) >= set(RESTRICTED_FIELDS):
        return [dict(r) for r in source]
    return [redact(r, allowed) for r in source]


def _with_values(payload: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in payload.items() if k != WITHHELD}, **values}


def events_view(published: Iterable[Row], granted: Iterable[str]) -> list[dict[str, Any]]:
    """The outbox's events (as the admin reads GET /events: the payload the broker
    carries, the withheld values beside it in `restricted`) with the withheld values a
    consumer granted `granted` fetches put into their payloads."""
    allowed = set(granted)
    out = []
    for event in published:
        values = {k: v for k, v in (event.get("restricted") or {}).items() if k in allowed}
        out.append({**event, "payload": _with_values(event["payload"], values)}
                   if values else dict(event))
    return out


def tap_view(tap: Iterable[Row], published: Iterable[Row], granted: Iterable[str]
             ) -> list[dict[str, Any]]:
    """The tap's records with the withheld values a consumer granted `granted` fetches
    (by event id, from the outbox) put into their payloads."""
    allowed = set(granted)
    if not allowed:
        return [dict(r) for r in tap]
    values = {e["event_id"]: {k: v for k, v in e["restricted"].items() if k in allowed}
              for e in published if e.get("restricted")}
    return [{**r, "payload": _with_values(r["payload"], values[r["event_id"]])}
            if r.get("event_id") in values and isinstance(r.get("payload"), dict)
            else dict(r) for r in tap]


# -- the check -----------------------------------------------------------------------------
def _carried(tap: Sequence[Row], granted: Iterable[str]) -> list[tuple[Row, dict[str, Any]]]:
    """The tapped upserts that carried a restricted value, with those values."""
    found = []
    for record in tapped_events(tap):
        payload = record.get("payload")
        if record.get("type") == env.PRODUCT_UPSERTED and isinstance(payload, dict):
            values = leaked(payload, granted)
            if values:
                found.append((record, values))
    return found


def _leaks(rows: Iterable[Row], granted: Iterable[str]) -> dict[int, tuple[Row, dict[str, Any]]]:
    found: dict[int, tuple[Row, dict[str, Any]]] = {}
    for row in rows:
        values = leaked(row, granted)
        if values:
            found.setdefault(int(row["id"]), (row, values))
    return found


def _shown(pid: int, row: Row, values: Mapping[str, Any]) -> str:
    return f"product {pid} v{row.get('version')}: " + ", ".join(
        f"{k} {v!r}" for k, v in values.items())


def _paths(ids: Sequence[int], rows: Mapping[int, tuple[Row, dict[str, Any]]],
           carried: Sequence[tuple[Row, dict[str, Any]]], resyncs: Sequence[Row]
           ) -> list[str]:
    """Which way each leaked value came: an event that carried it, a resync that wrote the
    id (its report's changed_ids), or neither (another API read)."""
    by_event = {(int(r["aggregate_id"]), k, v) for r, values in carried
                for k, v in values.items()}
    left = set(ids)
    paths = []
    via_events = {pid for pid in left
                  if any((pid, k, v) in by_event for k, v in rows[pid][1].items())}
    if via_events:
        paths.append(f"the events ({len(via_events)} of these values are the ones the broker "
                     "carried)")
        left -= via_events
    for kind, how in (("full", "the full resync's export (GET /export"),
                      ("partial", "the partial resync's batch fetch (POST /products/batch"),
                      ("auto", "the automatic resync's batch fetch (POST /products/batch")):
        reports = [r for r in resyncs if r.get("kind") == kind]
        wrote = left & {int(i) for r in reports for i in r.get("changed_ids", [])}
        if wrote:
            marks = sorted({int(r["high_water_mark"]) for r in reports
                            if r.get("high_water_mark") is not None})
            paths.append(f"{how}{f', high-water mark {marks[0]}' if marks else ''}): its "
                         f"report lists {len(wrote)} of these ids as written "
                         f"({sample(sorted(wrote))})")
            left -= wrote
    if left:
        paths.append(f"another API read (GET /products/{{id}} or a catch-up's GET /events): "
                     f"{len(left)} ids no event or resync report explains "
                     f"({sample(sorted(left))})")
    return paths


def restricted_data_contained(consumer: str, granted: Sequence[str], replica_db: Sequence[Row],
                              samples: Sequence[Row], tap: Sequence[Row] | None,
                              resyncs: Sequence[Row]) -> CheckResult:
    """No value of a restricted field `consumer` is not granted reached it: not in its
    replica database (final read and every sample), not in an event on the broker."""
    withheld = [f for f in RESTRICTED_FIELDS if f not in granted]
    carried = _carried(tap or [], granted)
    stored = _leaks(replica_db, granted)
    transient = {pid: leak for pid, leak in _leaks(samples, granted).items()
                 if pid not in stored}
    fields = ", ".join(withheld)
    if not (carried or stored or transient):
        return CheckResult(NAME, True,
                           f"{consumer} is not granted {fields}: its replica database holds "
                           f"no such value ({len(replica_db)} rows read from the database, "
                           f"{len(samples)} row changes sampled during the run)"
                           + (f", and none of the {len(tapped_events(tap))} events the "
                              "broker tap saw carried one" if tap is not None
                              else "; no broker tap ran"))
    problems = []
    if carried:
        kinds = ", ".join(sorted({k for _, v in carried for k in v}))
        problems.append(f"the broker tap saw {kinds} values inside {len(carried)} events "
                        "of the stream every subscriber reads, so they reached "
                        + consumer
                        + " through the events ("
                        + sample([_shown(int(r["aggregate_id"]), r, v) for r, v in carried],
                                 2) + ")")
    for label, leaks in (("holds", stored), ("held during the run (sampled), since "
                                                   "overwritten,", transient)):
        if leaks:
            ids = sorted(leaks)
            leaked_fields = ", ".join(sorted({k for _, v in leaks.values() for k in v}))
            problems.append(f"its replica database {label} {leaked_fields} for {len(ids)} "
                            f"products ({sample([_shown(p, *leaks[p]) for p in ids], 2)}); "
                            "they came through "
                            + "; ".join(_paths(ids, leaks, carried, resyncs)))
    return CheckResult(NAME, False,
                       f"restricted data leaked to {consumer}, which is not granted "
                       f"{fields}: " + "; ".join(problems),
                       {"events": [r["event_id"] for r, _ in carried[:100]],
                        "stored_ids": sorted(stored)[:100],
                        "transient_ids": sorted(transient)[:100]})


CREDENTIALS = "credentials_enforced"


def credentials_enforced(faults: Sequence[Row]) -> CheckResult:
    """What the `unauthorized_calls` probes saw (harness/faults/access_probe.py): every call
    without a credential answered 401, with a wrong or unfit one 403; the state those
    calls would change read the same before and after; each consumer's own credential
    allowed on the publisher's read endpoints, none of which served it a restricted value
    it is not granted."""
    probes = [f["access_probe"] for f in faults if f.get("access_probe")]
    if not probes:
        return inconclusive(CREDENTIALS, "no unauthorized_calls probe ran")
    problems: list[str] = []
    calls = views = 0
    for probe in probes:
        service = probe["service"]
        calls += len(probe["calls"])
        views += len(probe["views"])
        if probe.get("error"):
            problems.append(f"the probe of the {service} could not finish: {probe['error']}")
        wrong = [f"{c['call']} with {c['with']} answered {c['status']}, not "
                 f"{c['expected']}" for c in probe["calls"] if c["status"] != c["expected"]]
        if wrong:
            problems.append(f"the {service} did not refuse {len(wrong)} calls as it must "
                            f"({sample(wrong, 3)})")
        before, after = probe.get("state_before", {}), probe.get("state_after", {})
        changed = [f"{k} {before.get(k)!r} before, {after.get(k)!r} after"
                   for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)]
        if changed:
            problems.append(f"the {service}'s state changed across the refused calls, as the "
                            f"admin reads it ({sample(changed, 3)})")
        denied = [f"{v['call']} answered {v['status']} to {v['consumer']}"
                  for v in probe["views"] if not v["allowed"]]
        if denied:
            problems.append(f"the {service} refused consumers their own reads "
                            f"({sample(denied, 3)})")
        leaks = [f"{v['call']} served {v['consumer']} {', '.join(v['leaked'])}"
                 for v in probe["views"] if v["leaked"]]
        if leaks:
            problems.append("restricted values leaked through the publisher's API to "
                            f"consumers not granted them ({sample(leaks, 3)})")
    if problems:
        return CheckResult(CREDENTIALS, False, "; ".join(problems),
                           {"probes": [dict(p) for p in probes]})
    return CheckResult(CREDENTIALS, True,
                       f"{calls} calls without or with a wrong or unfit credential were "
                       f"refused (401/403) and changed nothing the admin reads; {views} reads "
                       "with a consumer's own credential were allowed and served no "
                       "restricted value it is not granted")
