"""Grants (harness/contract/grants.py), the publisher's filtering by them and its
credentials (Flask test client on a temporary SQLite database), the consumer's fetch of
withheld values (fake publisher), and the checks of harness/checkers/authorization.py."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select

from harness.checkers.authorization import (
    credentials_enforced,
    events_view,
    restricted_data_contained,
    source_view,
    tap_view,
)
from harness.collected import ConsumerObservation
from harness.contract import envelope as env
from harness.contract.dataset import summarize
from harness.contract.grants import (
    REDACTED,
    RESTRICTED_FIELDS,
    WITHHELD,
    Grants,
    header,
    issue,
    leaked,
    redact,
)
from harness.evaluation import Collected, evaluate
from reference_services.common.db import make_engines
from reference_services.consumer.applier import Applier, IncomingMessage, RemoteProduct
from reference_services.consumer.models import replica_products
from reference_services.consumer.restricted import with_restricted
from reference_services.publisher.app import create_app
from reference_services.publisher.models import outbox
from reference_services.publisher.relay import Relay
from reference_services.publisher.store import ProductStore, envelope_from_row

NOTE = "supplier-cost-7"
PRODUCT = {"name": "red mini 1", "category": "books", "price": 1999, "stock": 10,
           "restricted_note": NOTE}
GRANTS = issue(7, {"orders": RESTRICTED_FIELDS, "audit": ()})


def token(name: str) -> str:
    grant = GRANTS.for_consumer(name)
    assert grant is not None
    return grant.token


# -- the model -----------------------------------------------------------------------------
def test_tokens_come_from_the_seed_and_round_trip_as_json() -> None:
    assert issue(7, {"orders": RESTRICTED_FIELDS, "audit": ()}) == GRANTS
    assert issue(8, {"orders": RESTRICTED_FIELDS, "audit": ()}).admin_token != GRANTS.admin_token
    assert Grants.from_json(GRANTS.to_json()) == GRANTS
    assert len({GRANTS.admin_token, token("orders"), token("audit")}) == 3


@pytest.mark.parametrize("consumers, words", [
    ({"a": {"token": "t", "fields": ["price"]}}, "not restricted fields"),
    ({"a": {"token": "admin"}}, "a token of its own"),
    ({"a": {"token": "t"}, "b": {"token": "t"}}, "share a token"),
])
def test_bad_grants_are_refused(consumers: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Grants.from_json(json.dumps({"admin_token": "admin", "consumers": consumers}))


def test_a_view_redacts_what_is_not_granted() -> None:
    assert redact(PRODUCT, ())["restricted_note"] == REDACTED
    assert redact(PRODUCT, RESTRICTED_FIELDS) == PRODUCT
    assert leaked(PRODUCT, ()) == {"restricted_note": NOTE}
    assert leaked(redact(PRODUCT, ()), ()) == {}


# -- the publisher -------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProductStore]:
    store = ProductStore(make_engines(f"sqlite:///{tmp_path / 'publisher.db'}"))
    yield store
    store.engines.writer.dispose()
    store.engines.reader.dispose()


@pytest.fixture
def publisher(store: ProductStore) -> FlaskClient:
    relay = Relay(store, "amqp://guest:guest@127.0.0.1:1/%2F")  # never started
    return create_app(store, relay, "none", grants=GRANTS).test_client()


def js(response: Any) -> Any:
    """A test client answer's JSON body (there must be one)."""
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)
    return body


def as_(name: str) -> dict[str, str]:
    return header(GRANTS.admin_token if name == "admin" else token(name))


def test_events_withhold_restricted_values_and_name_them(store: ProductStore) -> None:
    written = store.create(PRODUCT)
    with store.engines.reader.connect() as conn:
        row = conn.execute(select(outbox)).one()
    thin, fat = envelope_from_row(row), envelope_from_row(row, fat=True)
    assert thin.payload["restricted_note"] == REDACTED
    assert thin.payload[WITHHELD] == ["restricted_note"]
    assert fat.payload["restricted_note"] == NOTE and WITHHELD not in fat.payload
    assert store.restricted_values([written.event_id], frozenset()) == {}
    assert store.restricted_values([written.event_id], frozenset(RESTRICTED_FIELDS)) == {
        written.event_id: {"restricted_note": NOTE}}


def test_every_read_serves_the_callers_view(publisher: FlaskClient) -> None:
    assert publisher.post("/products", json=PRODUCT).status_code == 201  # writes are open
    for who, note in (("admin", NOTE), ("orders", NOTE), ("audit", REDACTED)):
        headers = as_(who)
        assert js(publisher.get("/products/1", headers=headers))["restricted_note"] == note
        batch = js(publisher.post("/products/batch", json={"ids": [1]}, headers=headers))
        assert batch["products"][0]["restricted_note"] == note
        listed = js(publisher.get("/products?lo=0&hi=10", headers=headers))
        assert listed[0]["restricted_note"] == note
        exported = publisher.get("/export", headers=headers).get_data(as_text=True)
        assert json.loads(exported.splitlines()[1])["restricted_note"] == note
        event = js(publisher.get("/events", headers=headers))[0]
        assert event["payload"]["restricted_note"] == REDACTED
        assert event.get("restricted", {}).get("restricted_note", REDACTED) == note


def test_hashes_are_over_the_callers_view(publisher: FlaskClient) -> None:
    publisher.post("/products", json=PRODUCT)
    full = {"id": 1, **PRODUCT, "version": 1}
    for who, granted in (("orders", RESTRICTED_FIELDS), ("audit", ())):
        expected = summarize([(1, redact(full, granted))])["hash"]
        assert js(publisher.get("/snapshot", headers=as_(who)))["hash"] == expected
        ranges = js(publisher.get("/ranges?bounds=0-10", headers=as_(who)))
        assert ranges[0]["hash"] == expected
    assert js(publisher.get("/snapshot", headers=as_("orders")))["hash"] != \
        js(publisher.get("/snapshot", headers=as_("audit")))["hash"]


@pytest.mark.parametrize("method, path", [
    ("GET", "/export"), ("GET", "/snapshot"), ("GET", "/events"), ("GET", "/products/1"),
    ("GET", "/admin/crash-points"), ("POST", "/admin/relay-faults"),
])
def test_no_credential_is_401_and_a_wrong_one_403(publisher: FlaskClient, method: str,
                                                  path: str) -> None:
    assert publisher.open(path, method=method, json={}).status_code == 401
    assert publisher.open(path, method=method, json={},
                          headers=header("wrong")).status_code == 403


def test_admin_endpoints_refuse_a_consumers_credential(publisher: FlaskClient) -> None:
    answer = publisher.post("/admin/relay-faults", json={"drop_next": 3},
                            headers=as_("orders"))
    assert answer.status_code == 403
    state = js(publisher.get("/admin/relay-faults", headers=as_("admin")))
    assert state["drop_next"] == 0


def test_restricted_values_only_for_the_granted(publisher: FlaskClient) -> None:
    event_id = js(publisher.post("/products", json=PRODUCT))["event_id"]
    body = {"event_ids": [event_id]}
    assert publisher.post("/events/restricted", json=body,
                          headers=as_("audit")).status_code == 403
    assert js(publisher.post("/events/restricted", json=body, headers=as_("orders"))) == {
        "values": {event_id: {"restricted_note": NOTE}}}


def test_the_export_leaks_variant_ignores_grants(store: ProductStore) -> None:
    relay = Relay(store, "amqp://guest:guest@127.0.0.1:1/%2F")
    leaky = create_app(store, relay, "export_leaks", grants=GRANTS).test_client()
    leaky.post("/products", json=PRODUCT)
    exported = leaky.get("/export", headers=as_("audit")).get_data(as_text=True)
    assert json.loads(exported.splitlines()[1])["restricted_note"] == NOTE


def test_the_open_admin_variant_takes_a_consumers_credential_for_admin_calls(
        store: ProductStore) -> None:
    relay = Relay(store, "amqp://guest:guest@127.0.0.1:1/%2F")
    correct = create_app(store, relay, "none", grants=GRANTS).test_client()
    assert correct.get("/admin/crash-points", headers=as_("audit")).status_code == 403
    open_admin = create_app(store, relay, "open_admin", grants=GRANTS).test_client()
    assert open_admin.get("/admin/crash-points", headers=as_("audit")).status_code == 200
    # Still a credential: without one, or with a wrong one, it is refused as before.
    assert open_admin.get("/admin/crash-points").status_code == 401
    assert open_admin.get("/admin/crash-points",
                          headers={"Authorization": "Bearer nobody"}).status_code == 403


# -- the consumer --------------------------------------------------------------------------
class FakeRestricted:
    """Stands in for the publisher's /grants/mine and /events/restricted."""

    def __init__(self, granted: Sequence[str], known: dict[str, dict[str, Any]]) -> None:
        self._granted = frozenset(granted)
        self.known = known
        self.asked: list[list[str]] = []

    def granted(self) -> frozenset[str]:
        return self._granted

    def values(self, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.asked.append(list(event_ids))
        return {i: v for i, v in self.known.items() if i in event_ids}


def thin_upsert(event_id: str, version: int = 1) -> IncomingMessage:
    payload = {**redact(PRODUCT, ()), WITHHELD: ["restricted_note"]}
    body = env.Envelope(event_id, env.PRODUCT_UPSERTED, "1", version, version, 1.0,
                        env.SCHEMA_VERSION, payload).encode()
    return IncomingMessage(body, False, 2.0)


def stored_note(writer: Engine) -> str:
    with writer.connect() as conn:
        return str(conn.execute(select(replica_products.c.restricted_note)).scalar_one())


def test_a_granted_consumer_fetches_withheld_values_once_per_batch(writer: Engine) -> None:
    restricted = FakeRestricted(RESTRICTED_FIELDS, {"e1": {"restricted_note": "a"},
                                                    "e2": {"restricted_note": NOTE}})
    applier = Applier(writer, lambda pid: None, restricted=restricted)
    applier.apply_batch([thin_upsert("e1", 1), thin_upsert("e2", 2)])
    assert restricted.asked == [["e1", "e2"]]
    assert stored_note(writer) == NOTE


def test_a_consumer_without_the_grant_stores_the_redacted_value(writer: Engine) -> None:
    restricted = FakeRestricted((), {"e1": {"restricted_note": NOTE}})
    Applier(writer, lambda pid: None, restricted=restricted).apply_batch([thin_upsert("e1")])
    assert restricted.asked == []
    assert stored_note(writer) == REDACTED


def test_an_event_the_publisher_does_not_know_is_resynced(writer: Engine) -> None:
    fetched: list[int] = []

    def fetch(pid: int) -> RemoteProduct:
        fetched.append(pid)
        return RemoteProduct(3, False, {**PRODUCT, "restricted_note": "now"})

    applier = Applier(writer, fetch, restricted=FakeRestricted(RESTRICTED_FIELDS, {}))
    applier.apply_batch([thin_upsert("made-up", 2)])
    assert fetched == [1] and stored_note(writer) == "now"


def test_a_catch_up_event_carries_its_values_back_into_the_payload() -> None:
    event = {"payload": {**redact(PRODUCT, ()), WITHHELD: ["restricted_note"]},
             "restricted": {"restricted_note": NOTE}}
    assert with_restricted(event)["payload"] == PRODUCT
    thin = {"payload": {**redact(PRODUCT, ()), WITHHELD: ["restricted_note"]}}
    assert with_restricted(thin) == thin


# -- the checks ----------------------------------------------------------------------------
def row(pid: int, note: str, version: int = 1) -> dict[str, Any]:
    return {"id": pid, **PRODUCT, "restricted_note": note, "version": version,
            "deleted": False}


def tapped(pid: int, note: str, event_id: str = "e1") -> dict[str, Any]:
    return {"event_id": event_id, "type": env.PRODUCT_UPSERTED, "aggregate_id": str(pid),
            "version": 1, "sequence": 1, "payload": {**PRODUCT, "restricted_note": note}}


def test_nothing_restricted_anywhere_passes() -> None:
    result = restricted_data_contained("consumer2", (), [row(1, "")], [row(1, "")],
                                       [tapped(1, "")], [])
    assert result.ok, result.details


def test_values_carried_by_events_fail_naming_the_path() -> None:
    result = restricted_data_contained("consumer2", (), [row(1, NOTE)], [],
                                       [tapped(1, NOTE)], [])
    assert not result.ok
    assert "restricted_note values inside 1 events" in result.details
    assert "came through the events" in result.details


def test_values_written_by_a_full_resync_fail_naming_the_export() -> None:
    report = {"kind": "full", "changed_ids": [1], "high_water_mark": 40}
    result = restricted_data_contained("consumer2", (), [row(1, NOTE)], [],
                                       [tapped(1, "")], [report])
    assert not result.ok
    assert "full resync's export (GET /export, high-water mark 40)" in result.details


def test_a_value_held_only_during_the_run_fails_too() -> None:
    result = restricted_data_contained("consumer2", (), [row(1, "")], [row(1, NOTE)],
                                       [], [])
    assert not result.ok and "held during the run" in result.details
    assert "another API read" in result.details


def test_views_put_back_only_what_the_consumer_is_granted() -> None:
    source = [{"id": 1, **PRODUCT, "version": 1}]
    assert source_view(source, ())[0]["restricted_note"] == REDACTED
    assert source_view(source, RESTRICTED_FIELDS) == source
    published = [{"event_id": "e1", "payload": {**redact(PRODUCT, ()),
                                                WITHHELD: ["restricted_note"]},
                  "restricted": {"restricted_note": NOTE}}]
    assert events_view(published, RESTRICTED_FIELDS)[0]["payload"] == PRODUCT
    assert events_view(published, ())[0]["payload"]["restricted_note"] == REDACTED
    tap = [tapped(1, REDACTED)]
    assert tap_view(tap, published, RESTRICTED_FIELDS)[0]["payload"]["restricted_note"] == NOTE
    assert tap_view(tap, published, ()) == tap


def probe(**changes: Any) -> dict[str, Any]:
    record = {"service": "publisher", "error": "",
              "calls": [{"call": "GET /export", "with": "no credential", "status": 401,
                         "expected": 401}],
              "views": [{"call": "GET /export", "consumer": "audit", "status": 200,
                         "allowed": True, "leaked": []}],
              "state_before": {"relay_faults": {"drop_next": 0}},
              "state_after": {"relay_faults": {"drop_next": 0}}}
    return {"access_probe": {**record, **changes}}


def test_credentials_enforced_passes_on_refused_calls_and_clean_views() -> None:
    assert credentials_enforced([probe()]).ok


@pytest.mark.parametrize("changes, words", [
    ({"calls": [{"call": "POST /admin/relay-faults", "with": "a wrong credential",
                 "status": 200, "expected": 403}]}, "answered 200, not 403"),
    ({"state_after": {"relay_faults": {"drop_next": 1}}}, "state changed"),
    ({"views": [{"call": "GET /export", "consumer": "audit", "status": 200, "allowed": True,
                 "leaked": ["restricted_note 'x'"]}]}, "GET /export served audit"),
])
def test_credentials_enforced_names_what_went_wrong(changes: dict[str, Any],
                                                    words: str) -> None:
    result = credentials_enforced([probe(**changes)])
    assert not result.ok and words in result.details


def test_credentials_enforced_without_a_probe_is_inconclusive() -> None:
    assert credentials_enforced([{"fault": "kill"}]).status == "inconclusive"


# -- wired into the judgement --------------------------------------------------------------
def judged(grants: dict[str, list[str]], replica_note: str) -> dict[str, Any]:
    source = [{"id": 1, **PRODUCT, "version": 1}]
    replica = [{**source[0], "restricted_note": replica_note}]
    record = {"event_id": "e1", "type": env.PRODUCT_UPSERTED, "aggregate_id": "1",
              "version": 1, "sequence": 1, "occurred_at": 10.0, "sent_at": 10.0,
              "schema_version": 1,
              "payload": {**redact(PRODUCT, ()), WITHHELD: ["restricted_note"]},
              "restricted": {"restricted_note": NOTE}}
    tap = [{**{k: record[k] for k in ("event_id", "type", "aggregate_id", "version",
                                      "sequence", "payload")}, "digest": "d"}]
    seen = ConsumerObservation(replica_db=[{**replica[0], "deleted": False}], samples=[],
                               sample_reads=[], sampler={}, queue=None)
    result = evaluate(Collected(
        ops=[{"ok": True}], source=source, replica=replica, published=[record],
        deliveries=[{"id": 1, "event_id": "e1", "aggregate_id": "1", "version": 1,
                     "outcome": "applied", "occurred_at": 10.0, "committed_at": 10.01,
                     "redelivered": False}],
        dead_letters=[], broker_dead_letters=0, faults=[], faults_planned=0,
        converged_after_s=0.1, converge_timeout_s=10, settle_s=1, tap=tap,
        tap_status={"complete": True}, observed=seen, grants=grants))
    return {c.name: c for c in result.checks}


def test_a_granted_consumer_is_judged_on_the_full_rows() -> None:
    checks = judged({"consumer": list(RESTRICTED_FIELDS)}, NOTE)
    assert checks["convergence"].ok and checks["replica_matches_tap_model"].ok
    assert "restricted_data_contained" not in checks


def test_a_consumer_without_the_grant_is_judged_on_its_view_and_for_leaks() -> None:
    clean = judged({"consumer": []}, REDACTED)
    assert clean["convergence"].ok and clean["restricted_data_contained"].ok
    leaky = judged({"consumer": []}, NOTE)
    assert not leaky["convergence"].ok and not leaky["restricted_data_contained"].ok
