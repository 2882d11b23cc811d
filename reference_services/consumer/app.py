"""Order service HTTP API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from flask import Flask, Response, jsonify, request

from harness.contract.grants import Grants
from reference_services.common.auth import Access, install
from reference_services.common.db import Engines
from reference_services.common.http import (
    add_admin_routes,
    json_body,
    json_error,
    parse_bounds,
)
from reference_services.common.query_args import BadArgument, int_arg
from reference_services.consumer import queries
from reference_services.consumer.models import orders
from reference_services.consumer.resync import Resyncer, ResyncError
from reference_services.consumer.verifier import Verifier
from reference_services.consumer.worker import Worker


def access(method: str, path: str) -> Access:
    """What a request to the consumer needs (reference_services/common/auth.py): its
    liveness probe and its own business (orders) are open; everything else reads its
    replica and bookkeeping, which may hold restricted values, or controls it."""
    return Access.PUBLIC if path in ("/health", "/orders") else Access.ADMIN


def create_app(engines: Engines, worker: Worker, verifier: Verifier,
               resyncer: Resyncer, name: str, admin_token: str = "") -> Flask:
    app = Flask("consumer")
    install(app, Grants(admin_token) if admin_token else None, access)
    add_admin_routes(app)
    app.register_error_handler(BadArgument, lambda exc: json_error(400, str(exc)))

    @app.get("/health")
    def health() -> Any:
        return jsonify({"ok": True, "service": "consumer", "name": name,
                        "variant": resyncer.applier.variant,
                        "worker": worker.health(),
                        "verifier": asdict(verifier.stats)})

    @app.post("/resync")
    def resync() -> Any:
        """{"ids": [..]} for a partial resync, {"full": true} for a full one."""
        body = json_body()
        try:
            if body.get("full") is True:
                report = resyncer.full()
            elif isinstance(body.get("ids"), list) and body["ids"] and all(
                    isinstance(i, int) and not isinstance(i, bool) for i in body["ids"]):
                report = resyncer.partial(body["ids"])
            else:
                return json_error(400, 'give {"ids": [1, 2, ...]} or {"full": true}')
        except ResyncError as exc:
            return json_error(503, str(exc))
        return jsonify(report.to_dict())

    @app.get("/resync")
    def resync_history() -> Any:
        return jsonify(resyncer.history[-100:])

    @app.post("/admin/variant")
    def set_variant() -> Any:
        """Switch a bug variant on or off in place: how a scenario "deploys the fix"."""
        variant = str(json_body().get("variant", ""))
        if variant not in ("none", "truncate_names", "no_dedupe", "no_version_check",
                           "log_lies_dedupe", "log_lies_stale"):
            return json_error(400, f"variant {variant!r} cannot be switched at run time")
        resyncer.applier.variant = variant
        return jsonify({"variant": variant})

    @app.post("/verify")
    def verify() -> Any:
        """Integrity check against the publisher; {"bisect": true} also finds the ids,
        {"sample": N} also compares N random rows field by field."""
        body = json_body()
        sample = body.get("sample", 0)
        if not isinstance(sample, int) or not 0 <= sample <= 10_000:
            return json_error(400, "sample must be an integer from 0 to 10000")
        return jsonify(verifier.verify_once(bisect=bool(body.get("bisect")), sample=sample))

    @app.get("/stats")
    def stats() -> Any:
        return jsonify(queries.counters(engines.reader))

    @app.get("/replica/snapshot")
    def snapshot() -> Any:
        return jsonify(queries.replica_snapshot(engines.reader))

    @app.get("/replica/ranges")
    def replica_ranges() -> Any:
        try:
            bounds = parse_bounds(request.args.get("bounds", ""))
        except ValueError as exc:
            return json_error(400, str(exc))
        return jsonify(queries.replica_range_hashes(engines.reader, bounds))

    @app.get("/replica/export")
    def export() -> Response:
        rows = queries.replica_export(engines.reader)

        def lines() -> Iterator[str]:
            for row in rows:
                yield json.dumps(row, separators=(",", ":")) + "\n"

        return Response(lines(), mimetype="application/x-ndjson")

    @app.get("/deliveries")
    def deliveries() -> Any:
        return jsonify(queries.deliveries_after(
            engines.reader, int_arg("after", 0), int_arg("limit", 1000, minimum=1, cap=10000)))

    @app.get("/dead-letters")
    def dead_letters() -> Any:
        return jsonify(queries.dead_letter_list(engines.reader,
                                                int_arg("limit", 100, minimum=1)))

    @app.post("/orders")
    def create_order() -> Any:
        body = json_body()
        product_id, quantity = body.get("product_id"), body.get("quantity", 1)
        if not isinstance(product_id, int) or not isinstance(quantity, int) or quantity < 1:
            return json_error(400, "give product_id (int) and quantity (int >= 1)")
        with engines.writer.begin() as conn:
            result = conn.execute(orders.insert().values(product_id=product_id,
                                                         quantity=quantity,
                                                         created_at=time.time()))
        pk = result.inserted_primary_key
        return jsonify({"id": pk[0] if pk else None, "product_id": product_id,
                        "quantity": quantity}), 201

    @app.get("/orders")
    def order_history() -> Any:
        return jsonify(queries.order_history(engines.reader))

    return app
