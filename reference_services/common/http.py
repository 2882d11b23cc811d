"""Small helpers for the services' Flask apps and their HTTP server."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server


def json_error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def parse_bounds(spec: str, limit: int = 4096) -> list[tuple[int, int]]:
    """"0-100,100-200" -> [(0, 100), (100, 200)]; raises ValueError naming the bad part."""
    bounds = []
    for part in filter(None, spec.split(",")):
        lo, sep, hi = part.partition("-")
        if not sep or not lo.isdigit() or not hi.isdigit() or int(lo) > int(hi):
            raise ValueError(f"bad range {part!r}: write lo-hi with 0 <= lo <= hi")
        bounds.append((int(lo), int(hi)))
    if not bounds or len(bounds) > limit:
        raise ValueError(f"give between 1 and {limit} ranges as bounds=lo-hi,lo-hi")
    return bounds


def serve_until_signalled(app: Flask, host: str, port: int, on_stop: Callable[[], None],
                          service: str) -> None:
    """Serve `app` on a threaded server until SIGTERM/SIGINT, then run `on_stop` and return.

    A "<service> listening on <url>" line is printed once the socket listens.
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app, threaded=True)
    stopping = threading.Event()

    def _handle(_signum: int, _frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    print(f"{service} listening on http://{host}:{server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        on_stop()
        server.server_close()


def add_admin_routes(app: Flask) -> None:
    """POST /admin/crash-points {"point": ..., "after_hits": 1}; GET lists armed points."""
    from harness.contract.crash_points import POINTS
    from reference_services.common.crashpoints import CRASH_POINTS

    @app.get("/admin/crash-points")
    def list_crash_points() -> Any:
        return jsonify({"known": sorted(POINTS), "armed": CRASH_POINTS.armed()})

    @app.post("/admin/crash-points")
    def arm_crash_point() -> Any:
        body = json_body()
        try:
            CRASH_POINTS.arm(str(body.get("point", "")), int(body.get("after_hits", 1)))
        except (TypeError, ValueError) as exc:
            return json_error(400, str(exc))
        return jsonify({"armed": CRASH_POINTS.armed()})
