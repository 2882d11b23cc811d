"""Input validation of the reference services' HTTP APIs, through Flask's test client on a
temporary SQLite database: everything a replica could not hold, and every listing
argument that is not a sensible integer, is a 400 naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from flask.testing import FlaskClient

from reference_services.common.db import make_engines
from reference_services.consumer.app import create_app as consumer_app
from reference_services.consumer.models import metadata as consumer_metadata
from reference_services.publisher.app import create_app as publisher_app
from reference_services.publisher.relay import Relay
from reference_services.publisher.store import INT_MAX, ProductStore

VALID = {"name": "red mini 1", "category": "books", "price": 1999, "stock": 10,
         "restricted_note": "supplier-cost-1"}


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[FlaskClient]:
    store = ProductStore(make_engines(f"sqlite:///{tmp_path / 'publisher.db'}"))
    # Never started: a write only wakes it, and nothing here needs a broker.
    relay = Relay(store, "amqp://guest:guest@127.0.0.1:1/%2F")
    yield publisher_app(store, relay, "none").test_client()
    store.engines.writer.dispose()
    store.engines.reader.dispose()


@pytest.fixture
def consumer(tmp_path: Path) -> Iterator[FlaskClient]:
    engines = make_engines(f"sqlite:///{tmp_path / 'consumer.db'}")
    consumer_metadata.create_all(engines.writer)
    # The listing routes read the database only; the worker, verifier and resyncer are
    # never reached by them.
    unused = cast(Any, None)
    yield consumer_app(engines, unused, unused, unused, "orders").test_client()
    engines.writer.dispose()
    engines.reader.dispose()


def error_of(response: Any) -> str:
    assert response.status_code == 400, response.get_data(as_text=True)
    message: str = response.get_json()["error"]
    return message


def create(client: FlaskClient, **fields: Any) -> Any:
    return client.post("/products", json={**VALID, **fields})


# -- publisher writes -----------------------------------------------------------------------


def test_a_valid_product_is_created(publisher: FlaskClient) -> None:
    response = create(publisher, name="n" * 200, category="c" * 64, restricted_note="r" * 500,
                      price=INT_MAX, stock=-INT_MAX)
    assert response.status_code == 201
    assert response.get_json()["version"] == 1


@pytest.mark.parametrize(("field", "limit"), [("name", 200), ("category", 64),
                                              ("restricted_note", 500)])
def test_over_long_text_is_rejected_on_create_and_update(publisher: FlaskClient, field: str,
                                                         limit: int) -> None:
    assert error_of(create(publisher, **{field: "x" * (limit + 1)})) == \
        f"field {field} is {limit + 1} characters long; at most {limit} fit the replica"
    product = create(publisher).get_json()
    assert "characters long" in error_of(
        publisher.put(f"/products/{product['id']}", json={field: "x" * 300_000}))
    assert publisher.get(f"/products/{product['id']}").get_json()[field] == VALID[field]


@pytest.mark.parametrize(("field", "value"), [
    ("price", -1), ("price", INT_MAX + 1), ("price", 10**30),
    ("stock", INT_MAX + 1), ("stock", -INT_MAX - 1),
])
def test_out_of_range_numbers_are_rejected(publisher: FlaskClient, field: str,
                                           value: int) -> None:
    assert error_of(create(publisher, **{field: value})).startswith(
        f"field {field} must be from ")


@pytest.mark.parametrize("value", [1e30, 19.99, "1999", True, None])
def test_a_price_that_is_not_an_integer_is_rejected(publisher: FlaskClient, value: Any
                                                    ) -> None:
    assert error_of(create(publisher, price=value)) == "field price must be int"


def test_stock_deltas_that_leave_the_range_are_rejected_and_change_nothing(
        publisher: FlaskClient) -> None:
    product = create(publisher, stock=INT_MAX - 5).get_json()
    url = f"/products/{product['id']}/stock"
    assert error_of(publisher.post(url, json={"delta": 10})) == (
        f"delta 10 would take stock {INT_MAX - 5} out of the range {-INT_MAX} to {INT_MAX}")
    assert "out of the range" in error_of(publisher.post(url, json={"delta": -(10**30)}))
    assert publisher.get(f"/products/{product['id']}").get_json()["version"] == 1
    assert publisher.post(url, json={"delta": 5}).status_code == 200
    # Nothing was written for the refused deltas: one create, one adjustment.
    assert [e["version"] for e in publisher.get("/events").get_json()] == [1, 2]


def test_negative_stock_from_deltas_is_allowed(publisher: FlaskClient) -> None:
    product = create(publisher, stock=1).get_json()
    response = publisher.post(f"/products/{product['id']}/stock", json={"delta": -3})
    assert response.status_code == 200
    assert response.get_json()["stock"] == -2


# -- listing arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(("query", "message"), [
    ("limit=-1", "limit must be >= 1, got -1"),
    ("limit=0", "limit must be >= 1, got 0"),
    ("limit=abc", "limit must be an integer, got 'abc'"),
    ("limit=1.5", "limit must be an integer, got '1.5'"),
    ("after=-1", "after must be >= 0, got -1"),
    ("after=x", "after must be an integer, got 'x'"),
])
def test_publisher_events_listing_rejects_bad_arguments(publisher: FlaskClient, query: str,
                                                        message: str) -> None:
    assert error_of(publisher.get(f"/events?{query}")) == message


def test_publisher_events_listing_caps_and_pages(publisher: FlaskClient) -> None:
    for _ in range(3):
        create(publisher)
    assert len(publisher.get("/events?limit=99999").get_json()) == 3
    page = publisher.get("/events?after=1&limit=1").get_json()
    assert [e["sequence"] for e in page] == [2]


@pytest.mark.parametrize(("query", "message"), [
    ("lo=-5", "lo must be >= 0, got -5"),
    ("lo=a", "lo must be an integer, got 'a'"),
    ("lo=0&hi=z", "hi must be an integer, got 'z'"),
])
def test_publisher_product_range_rejects_bad_arguments(publisher: FlaskClient, query: str,
                                                       message: str) -> None:
    assert error_of(publisher.get(f"/products?{query}")) == message


@pytest.mark.parametrize(("path", "query", "message"), [
    ("/deliveries", "limit=-1", "limit must be >= 1, got -1"),
    ("/deliveries", "limit=ten", "limit must be an integer, got 'ten'"),
    ("/deliveries", "after=-3", "after must be >= 0, got -3"),
    ("/dead-letters", "limit=-1", "limit must be >= 1, got -1"),
    ("/dead-letters", "limit=", "limit must be an integer, got ''"),
])
def test_consumer_listings_reject_bad_arguments(consumer: FlaskClient, path: str, query: str,
                                                message: str) -> None:
    assert error_of(consumer.get(f"{path}?{query}")) == message


def test_consumer_listings_accept_good_arguments(consumer: FlaskClient) -> None:
    assert consumer.get("/deliveries?after=0&limit=50000").get_json() == []
    assert consumer.get("/dead-letters?limit=100000").get_json() == []
