"""A named TCP proxy: a listener, its open connections and its toxics.

Enabled means listening. Disabling closes the listener (new connects are refused) and
aborts every open connection on both sides: a cut network link. Toxics live on the proxy,
so they survive disable/enable and address changes.
"""

from __future__ import annotations

import asyncio
import random

from harness.faultproxy.addresses import (
    bind_listener,
    bound_display,
    normalised_listen,
    resolve_listen,
)
from harness.faultproxy.chain import ToxicCollection
from harness.faultproxy.connection import Connection, Side
from harness.faultproxy.link import Link
from harness.faultproxy.toxics import Direction, Toxic


class Proxy:
    """One proxy as managed through the API (``name``, ``listen``, ``upstream``...)."""

    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection()
        self._rng = rng
        self._server: asyncio.Server | None = None
        self._connections: set[Connection] = set()

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on ``listen``; raise ApiError(500) if it cannot be resolved or bound."""
        if self.enabled:
            return
        address = await resolve_listen(self.listen)
        sock = bind_listener(address)
        try:
            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(self._accept, sock=sock)
        except BaseException:
            sock.close()
            raise
        # Report the concrete address; a port-0 proxy keeps its port across restarts.
        self.listen = bound_display(sock, address)
        self.enabled = True

    async def stop(self) -> None:
        """Stop listening and abort every open connection."""
        if not self.enabled:
            return
        self.enabled = False
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.cut_connections()

    async def cut_connections(self) -> None:
        tasks = [task for conn in list(self._connections) for task in conn.cut()]
        if tasks:
            # The tasks were just cancelled; wait for them so none outlives its proxy.
            await asyncio.gather(*tasks, return_exceptions=True)

    async def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Apply new settings as Toxiproxy does (restart when an address changed)."""
        if self.listen != await normalised_listen(listen) or self.upstream != upstream:
            await self.stop()
            self.listen = listen
            self.upstream = upstream
        if enabled and not self.enabled:
            await self.start()
        elif not enabled:
            await self.stop()

    async def same_addresses(self, listen: str, upstream: str) -> bool:
        return self.listen == await normalised_listen(listen) and self.upstream == upstream

    # -- connections (ConnectionHost) ---------------------------------------------------
    def _accept(self) -> Side:
        connection = Connection(self, self._connections.discard)
        self._connections.add(connection)
        return connection.client

    def chain(self, direction: Direction) -> list[Toxic]:
        return self.toxics.chain(direction)

    def attach(self, connection: Connection) -> None:
        self.toxics.attach(connection)

    def detach(self, connection: Connection) -> None:
        self.toxics.detach(connection)

    def make_link(
        self, direction: Direction, source: Side, sink: Side, owner: Connection
    ) -> Link:
        return Link(direction, source, sink, owner, self.toxics.chain(direction), self._rng)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    # -- JSON ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, object]:
        # Key order and the empty "Logger" object match Toxiproxy 2.x replies exactly.
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "Logger": {},
            "toxics": [toxic.to_json() for toxic in self.toxics.all()],
        }
