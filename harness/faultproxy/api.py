"""The Toxiproxy HTTP API v2: routing, handlers and reply formats.

Status codes, error bodies, content types and JSON key order follow Toxiproxy 2.12, whose
API this module reproduces (the deliberate differences are listed in ``__init__.py``):
clients such as toxiproxy-python, the Go client and testcontainers rely on them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable

from harness.faultproxy import schema
from harness.faultproxy.errors import ApiError
from harness.faultproxy.httpserver import Request, Response
from harness.faultproxy.jsonio import encode
from harness.faultproxy.proxy import Proxy
from harness.faultproxy.registry import ProxyRegistry
from harness.faultproxy.toxics import Toxic

# The Toxiproxy release whose API this server reproduces; clients read it to tell API
# generations apart, so it names the emulated API rather than this package's version.
TOXIPROXY_VERSION = "2.12.0"

_JSON = ("Content-Type", "application/json")
_TEXT = ("Content-Type", "text/plain; charset=utf-8")
_NOSNIFF = ("X-Content-Type-Options", "nosniff")

Params = dict[str, str]
RouteHandler = Callable[["ToxiproxyApi", Request, Params], Awaitable[Response]]


def json_reply(value: object, status: int = 200) -> Response:
    return Response(status, encode(value), [_JSON])


def error_reply(error: ApiError) -> Response:
    # Go's http.Error forces text/plain even though the body is JSON.
    body = encode({"error": error.message, "status": error.status}) + b"\n"
    return Response(error.status, body, [_TEXT, _NOSNIFF])


def no_content() -> Response:
    return Response(204)


class ToxiproxyApi:
    """Turns HTTP requests into operations on a :class:`ProxyRegistry`."""

    def __init__(self, registry: ProxyRegistry) -> None:
        self.registry = registry
        # Handlers await (binding, cutting connections), so two requests could interleave;
        # Toxiproxy serialises changes with mutexes, this lock does the same.
        self._lock = asyncio.Lock()
        self._request_ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex()

    async def handle(self, request: Request) -> Response:
        match = _match(request.path)
        if match is None:
            return Response(404, b"404 page not found\n", [_TEXT, _NOSNIFF])
        methods, params = match
        handler = methods.get(request.method)
        if handler is None:
            return Response(405)
        request_id = ("X-Toxiproxy-Request-Id", f"{self._id_prefix}{next(self._request_ids):08x}")
        if request.header("user-agent").startswith("Mozilla/"):
            # Browsers are refused so a web page cannot drive the API cross-site.
            response = Response(403, b"User agent not allowed\n", [_TEXT, _NOSNIFF])
        else:
            async with self._lock:
                try:
                    response = await handler(self, request, params)
                except ApiError as exc:
                    response = error_reply(exc)
        response.headers.append(request_id)
        return response

    # -- proxies ------------------------------------------------------------------------
    async def proxy_index(self, request: Request, params: Params) -> Response:
        proxies = self.registry.proxies
        # Go marshals a map, which sorts its keys.
        return json_reply({name: proxies[name].to_json() for name in sorted(proxies)})

    async def proxy_create(self, request: Request, params: Params) -> Response:
        entry = schema.proxy_input(request.body, schema.ProxyInput("", "", "", True))
        _require_proxy_fields(entry)
        proxy = await self.registry.create(entry)
        return json_reply(proxy.to_json(), 201)

    async def populate(self, request: Request, params: Params) -> Response:
        try:
            entries = schema.populate_input(request.body)
        except ApiError as exc:
            return _populate_reply([], exc)
        done, error = await self.registry.populate(entries)
        return _populate_reply(done, error)

    async def proxy_show(self, request: Request, params: Params) -> Response:
        return json_reply(self.registry.get(params["proxy"]).to_json())

    async def proxy_update(self, request: Request, params: Params) -> Response:
        proxy = self.registry.get(params["proxy"])
        base = schema.ProxyInput(proxy.name, proxy.listen, proxy.upstream, proxy.enabled)
        entry = schema.proxy_input(request.body, base)
        await proxy.update(entry.listen, entry.upstream, bool(entry.enabled))
        return json_reply(proxy.to_json())

    async def proxy_delete(self, request: Request, params: Params) -> Response:
        await self.registry.delete(params["proxy"])
        return no_content()

    async def reset(self, request: Request, params: Params) -> Response:
        await self.registry.reset()
        return no_content()

    async def version(self, request: Request, params: Params) -> Response:
        # Built with a format string in Toxiproxy, hence the space after the colon.
        body = f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode()
        return Response(200, body, [("Content-Type", "application/json;charset=utf-8")])

    # -- toxics -------------------------------------------------------------------------
    async def toxic_index(self, request: Request, params: Params) -> Response:
        proxy = self.registry.get(params["proxy"])
        return json_reply([toxic.to_json() for toxic in proxy.toxics.all()])

    async def toxic_create(self, request: Request, params: Params) -> Response:
        proxy = self.registry.get(params["proxy"])
        given = schema.toxic_input(request.body)
        direction = schema.stream_direction(given.stream)
        name = given.name or f"{given.type_name}_{given.stream}"
        kind = schema.toxic_type(given.type_name)
        if proxy.toxics.get(name) is not None:
            raise ApiError("toxic already exists", 409)
        attributes = schema.attributes(given.attributes, kind)
        toxic = Toxic(name, kind, given.stream, direction, given.toxicity, attributes)
        proxy.toxics.add(toxic)
        return json_reply(toxic.to_json())

    async def toxic_show(self, request: Request, params: Params) -> Response:
        _proxy, toxic = self._toxic(params)
        return json_reply(toxic.to_json())

    async def toxic_update(self, request: Request, params: Params) -> Response:
        proxy, toxic = self._toxic(params)
        attributes, toxicity = schema.toxic_update_input(request.body, toxic.type)
        proxy.toxics.update(toxic, attributes, toxicity)
        return json_reply(toxic.to_json())

    async def toxic_delete(self, request: Request, params: Params) -> Response:
        proxy = self.registry.get(params["proxy"])
        if not proxy.toxics.remove(params["toxic"]):
            raise ApiError("toxic not found", 404)
        return no_content()

    def _toxic(self, params: Params) -> tuple[Proxy, Toxic]:
        proxy = self.registry.get(params["proxy"])
        toxic = proxy.toxics.get(params["toxic"])
        if toxic is None:
            raise ApiError("toxic not found", 404)
        return proxy, toxic


def _require_proxy_fields(entry: schema.ProxyInput) -> None:
    if not entry.name:
        raise schema.missing_field("name")
    if not entry.upstream:
        raise schema.missing_field("upstream")


def _populate_reply(done: list[Proxy], error: ApiError | None) -> Response:
    body: dict[str, object] = {}
    if error is not None:
        body["error"] = error.message
        body["status"] = error.status
    # Go marshals a nil slice, hence null rather than [] when nothing was applied.
    body["proxies"] = [proxy.to_json() for proxy in done] or None
    status = error.status if error is not None else 201
    return json_reply(body, status)


_ROUTES: list[tuple[tuple[str, ...], dict[str, RouteHandler]]] = [
    (("reset",), {"POST": ToxiproxyApi.reset}),
    (("version",), {"GET": ToxiproxyApi.version}),
    (("populate",), {"POST": ToxiproxyApi.populate}),
    (("proxies",), {"GET": ToxiproxyApi.proxy_index, "POST": ToxiproxyApi.proxy_create}),
    (
        ("proxies", "{proxy}"),
        {
            "GET": ToxiproxyApi.proxy_show,
            "POST": ToxiproxyApi.proxy_update,
            "PATCH": ToxiproxyApi.proxy_update,
            "DELETE": ToxiproxyApi.proxy_delete,
        },
    ),
    (
        ("proxies", "{proxy}", "toxics"),
        {"GET": ToxiproxyApi.toxic_index, "POST": ToxiproxyApi.toxic_create},
    ),
    (
        ("proxies", "{proxy}", "toxics", "{toxic}"),
        {
            "GET": ToxiproxyApi.toxic_show,
            "POST": ToxiproxyApi.toxic_update,
            "PATCH": ToxiproxyApi.toxic_update,
            "DELETE": ToxiproxyApi.toxic_delete,
        },
    ),
]


def _match(path: str) -> tuple[dict[str, RouteHandler], Params] | None:
    if not path.startswith("/"):
        return None
    segments = path[1:].split("/")
    for pattern, methods in _ROUTES:
        if len(pattern) != len(segments):
            continue
        params: Params = {}
        for expected, actual in zip(pattern, segments, strict=True):
            if expected.startswith("{"):
                if not actual:
                    break
                params[expected[1:-1]] = actual
            elif expected != actual:
                break
        else:
            return methods, params
    return None
