"""A minimal HTTP/1.1 server on asyncio streams, enough for the Toxiproxy API.

It parses a request line, headers and a ``Content-Length`` or chunked body, hands a
:class:`Request` to one handler coroutine and writes its :class:`Response`. Connections are
kept alive as HTTP/1.1 allows, so clients such as ``httpx.Client`` reuse them. Written here
rather than pulled in from a framework so the fault proxy has no third-party dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

_MAX_HEADER_LINES = 100
_MAX_BODY = 16 * 1024 * 1024
# Timeouts of Toxiproxy's Go http.Server: idle keep-alive connections are dropped after
# 60 s, and a request must arrive in full within 15 s of its first byte.
_IDLE_TIMEOUT = 60.0
_READ_TIMEOUT = 15.0
_CLOSE_GRACE = 2.0


class BadRequest(Exception):
    """The bytes received are not a valid HTTP/1.1 request."""


@dataclass
class Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves one handler on one TCP socket until :meth:`close`."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and start serving; return the bound (host, port), port 0 made concrete."""
        loop = asyncio.get_running_loop()
        # Resolve to a single address first: letting asyncio bind every address of a name
        # such as "localhost" would give IPv4 and IPv6 different ports when port is 0.
        infos = await loop.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        family, _type, proto, _name, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            self._server = await asyncio.start_server(self._serve_connection, sock=sock)
        except BaseException:
            sock.close()
            raise
        bound = sock.getsockname()
        return str(bound[0]), int(bound[1])

    async def close(self) -> None:
        """Stop listening and close every open client connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        # Closing the sockets ends each handler at its next read. Cancelling handlers
        # instead would make asyncio's stream machinery log every cancellation as an error.
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=_CLOSE_GRACE)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._request_loop(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            # The client went away or stalled; nothing can be answered on this socket.
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _request_loop(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                first = await asyncio.wait_for(_readline(reader), _IDLE_TIMEOUT)
                if not first:
                    return
                if first in (b"\r\n", b"\n"):
                    continue  # RFC 9112 allows stray empty lines before a request
                request = await asyncio.wait_for(
                    _read_request(first, reader, writer), _READ_TIMEOUT
                )
            except BadRequest as exc:
                log.debug("bad HTTP request: %s", exc)
                writer.write(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    b"Connection: close\r\nContent-Length: 15\r\n\r\n400 Bad Request"
                )
                await writer.drain()
                return
            response = await self._handler(request)
            keep_alive = _wants_keep_alive(request)
            writer.write(_serialise(request, response, keep_alive))
            await writer.drain()
            if not keep_alive:
                return


async def _read_request(
    first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> Request:
    try:
        method, target, version = first.decode("latin-1").rstrip("\r\n").split(" ")
    except ValueError:
        raise BadRequest(f"malformed request line {first[:80]!r}") from None
    if not version.startswith("HTTP/1.") or not method.isalpha():
        raise BadRequest(f"unsupported request line {first[:80]!r}")
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADER_LINES):
        line = await _readline(reader)
        if line in (b"\r\n", b"\n"):
            break
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(f"malformed header {line[:80]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    else:
        raise BadRequest("too many header lines")
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(headers, reader)
    # Routing works on the decoded path (as gorilla/mux does); the query is ignored.
    path = unquote(urlsplit(target).path)
    return Request(method=method, path=path, version=version, headers=headers, body=body)


async def _read_body(headers: dict[str, str], reader: asyncio.StreamReader) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = await _readline(reader)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("malformed chunk size") from None
            if size == 0:
                # Skip trailer fields up to the closing empty line.
                while (await _readline(reader)) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise BadRequest("body too large")
            parts.append(await reader.readexactly(size))
            await _readline(reader)
    length_text = headers.get("content-length", "0")
    try:
        length = int(length_text)
    except ValueError:
        raise BadRequest("malformed Content-Length") from None
    if length < 0 or length > _MAX_BODY:
        raise BadRequest("bad Content-Length")
    return await reader.readexactly(length) if length else b""


async def _readline(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError:
        # StreamReader signals a line longer than its 64 KiB limit this way.
        raise BadRequest("line too long") from None


def _wants_keep_alive(request: Request) -> bool:
    connection = request.header("connection").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in connection
    return "close" not in connection


def _serialise(request: Request, response: Response, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    lines.append(f"Date: {formatdate(usegmt=True)}")
    # A 204 reply must not carry a body length (RFC 9110 section 8.6).
    if response.status != HTTPStatus.NO_CONTENT:
        lines.append(f"Content-Length: {len(response.body)}")
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if request.method == "HEAD" or response.status == HTTPStatus.NO_CONTENT:
        return head
    return head + response.body
