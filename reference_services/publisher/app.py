"""Product service HTTP API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, jsonify, request

from harness.contract.grants import RESTRICTED_FIELDS, Grants
from reference_services.common.auth import Access, caller, install
from reference_services.common.http import (
    add_admin_routes,
    json_body,
    json_error,
    parse_bounds,
)
from reference_services.common.query_args import BadArgument, int_arg
from reference_services.publisher.direct_publisher import EventPublisher
from reference_services.publisher.relay import Relay
from reference_services.publisher.store import (
    MAX_BATCH_IDS,
    Gone,
    InvalidInput,
    NotFound,
    ProductStore,
    WriteResult,
)

EXPORT_CHUNK = 2000
"""Rows of GET /export per read and per write to the socket: the server sends every piece
as an HTTP chunk of its own, a system call each."""


# Reached without a credential: the product writes (the service's own clients, the
# workload) and the liveness probe. Everything else reads products or controls the service.
_OPEN = {("GET", "/health"), ("POST", "/products")}


def access(method: str, path: str) -> Access:
    """What a request to the publisher needs (reference_services/common/auth.py)."""
    if path.startswith("/admin/"):
        return Access.ADMIN
    if (method, path) in _OPEN or (
            method in ("PUT", "DELETE") and path.startswith("/products/")) or (
            method == "POST" and path.startswith("/products/") and path.endswith("/stock")):
        return Access.PUBLIC
    return Access.READ


def open_admin_access(method: str, path: str) -> Access:
    """BUG VARIANT `open_admin`: the control endpoints check that the caller is somebody,
    not that it is the admin: any consumer's credential arms crash points, drops relayed
    events and delays commits."""
    needed = access(method, path)
    return Access.READ if needed is Access.ADMIN else needed


def create_app(store: ProductStore, relay: Relay, variant: str,
               direct: EventPublisher | None = None, grants: Grants | None = None) -> Flask:
    app = Flask("publisher")
    install(app, grants, open_admin_access if variant == "open_admin" else access)
    add_admin_routes(app)
    app.register_error_handler(BadArgument, lambda exc: json_error(400, str(exc)))

    def write(action: Callable[[], WriteResult], status: int = 200) -> Any:
        try:
            result = action()
        except InvalidInput as exc:
            return json_error(400, str(exc))
        except NotFound as exc:
            return json_error(404, str(exc))
        except Gone as exc:
            return json_error(410, "product deleted", version=exc.version)
        if direct is not None:
            sequence = result.sequence
            direct.publish(store.envelope(sequence), lambda: store.mark_sent([sequence]))
        else:
            relay.wake()
        return jsonify({**result.product, "event_id": result.event_id,
                        "sequence": result.sequence}), status

    @app.post("/products")
    def create_product() -> Any:
        return write(lambda: store.create(json_body()), 201)

    @app.put("/products/<int:product_id>")
    def update_product(product_id: int) -> Any:
        return write(lambda: store.update(product_id, json_body()))

    @app.delete("/products/<int:product_id>")
    def delete_product(product_id: int) -> Any:
        return write(lambda: store.delete(product_id))

    @app.post("/products/<int:product_id>/stock")
    def adjust_stock(product_id: int) -> Any:
        return write(lambda: store.adjust_stock(product_id, json_body().get("delta")))

    @app.get("/products/<int:product_id>")
    def get_product(product_id: int) -> Any:
        try:
            return jsonify(store.get(product_id, caller().fields))
        except NotFound as exc:
            return json_error(404, str(exc))
        except Gone as exc:
            # A resync needs the delete's version to refuse older events afterwards.
            return json_error(410, "product deleted", id=product_id, deleted=True,
                              version=exc.version)

    @app.post("/products/batch")
    def products_by_ids() -> Any:
        """{"ids": [...]} -> {"products": live rows, "deleted": [{"id", "version"}]}: what
        GET /products/{id} answers for each id (an id in neither list is a 404), for up to
        MAX_BATCH_IDS ids in one request, so a partial resync or a classification costs a
        round trip per batch instead of one per id."""
        ids = json_body().get("ids")
        if (not isinstance(ids, list) or len(ids) > MAX_BATCH_IDS
                or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
            return json_error(400, f'give {{"ids": [...]}} with at most {MAX_BATCH_IDS} '
                                   "integer ids")
        live, deleted = store.products_by_ids(sorted(set(ids)), caller().fields)
        return jsonify({"products": live,
                        "deleted": [{"id": i, "version": v} for i, v in deleted.items()]})

    @app.get("/ranges")
    def ranges() -> Any:
        """Range hashes for bisection: ?bounds=lo-hi,lo-hi (ids lo <= id < hi)."""
        try:
            bounds = parse_bounds(request.args.get("bounds", ""))
        except ValueError as exc:
            return json_error(400, str(exc))
        return jsonify(store.range_hashes(bounds, caller().fields))

    @app.get("/products")
    def products_in_range() -> Any:
        lo = int_arg("lo", 0)
        hi = int_arg("hi", lo + 1000)
        if hi - lo > 100_000 or hi < lo:
            return json_error(400, "give lo <= hi with at most 100000 ids per page")
        return jsonify(store.rows_in_range(lo, hi, caller().fields))

    @app.post("/admin/relay-faults")
    def arm_relay_faults() -> Any:
        body = json_body()
        drop, corrupt = body.get("drop_next", 0), body.get("corrupt_next", 0)
        if not isinstance(drop, int) or not isinstance(corrupt, int):
            return json_error(400, "give drop_next and/or corrupt_next as integers")
        relay.faults.arm(drop, corrupt)
        return jsonify(relay.faults.state())

    @app.get("/admin/relay-faults")
    def relay_faults_state() -> Any:
        return jsonify(relay.faults.state())

    @app.get("/snapshot")
    def snapshot() -> Any:
        return jsonify(store.snapshot(caller().fields))

    @app.get("/export")
    def export() -> Response:
        # BUG (variant export_leaks): the export serves every column to every caller.
        pieces = store.export(EXPORT_CHUNK, frozenset(RESTRICTED_FIELDS)
                              if variant == "export_leaks" else caller().fields)
        header = next(pieces)  # the read is open and its high-water mark known

        def body() -> Iterator[str]:
            yield header
            # `yield from` hands the server's close() on to the store's generator, so a
            # client that hangs up ends the read transaction at once.
            yield from pieces

        return Response(body(), mimetype="application/x-ndjson",
                        headers={"X-High-Water-Mark": str(json.loads(header)
                                                          ["high_water_mark"])})

    @app.get("/events")
    def events() -> Any:
        return jsonify(store.events_after(int_arg("after", 0),
                                          int_arg("limit", 1000, minimum=1, cap=10000),
                                          caller().fields))

    @app.post("/events/restricted")
    def restricted_values() -> Any:
        """{"event_ids": [...]} -> {"values": {event_id: {field: value}}}: the restricted
        values those events withheld, at their own versions, that the caller may read."""
        ids = json_body().get("event_ids")
        if not isinstance(ids, list) or len(ids) > MAX_BATCH_IDS \
                or not all(isinstance(i, str) for i in ids):
            return json_error(400, f'give {{"event_ids": [...]}} with at most '
                                   f"{MAX_BATCH_IDS} ids")
        if not caller().fields:
            return json_error(403, f"{caller().name} is granted no restricted field")
        return jsonify({"values": store.restricted_values(ids, caller().fields)})

    @app.get("/grants/mine")
    def my_grants() -> Any:
        """Who the caller is and the restricted fields it may read."""
        return jsonify({"consumer": caller().name, "fields": sorted(caller().fields)})

    @app.get("/health")
    def health() -> Any:
        stats = relay.stats
        return jsonify({
            "ok": True,
            "service": "publisher",
            "variant": variant,
            "relay": {"connected": stats.connected, "published": stats.published,
                      "batches": stats.batches, "publish_failures": stats.publish_failures,
                      "last_error": stats.last_error,
                      "last_published_seq": stats.last_published_seq},
            "outbox": store.outbox_counts(),
        })

    return app
