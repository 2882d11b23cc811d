"""One proxied TCP connection: the client socket, the upstream socket and two links.

Closing follows Toxiproxy, which has no half-close: when one direction ends (EOF passed
through its toxics, or a toxic ended it), the socket it writes to is closed and the other
direction is told its source is gone; once it has flushed through its own toxics it closes
the remaining socket. Disabling the proxy aborts both sockets at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import sys
from collections.abc import Callable
from typing import Protocol

from harness.faultproxy.addresses import AddressError, split_upstream
from harness.faultproxy.link import Link
from harness.faultproxy.toxics import Direction, Toxic

log = logging.getLogger(__name__)

_LINGER_RESET = struct.pack("ii", 1, 0)


class ConnectionHost(Protocol):
    """What a connection needs from its proxy."""

    name: str
    upstream: str

    def chain(self, direction: Direction) -> list[Toxic]: ...

    def attach(self, connection: Connection) -> None: ...

    def detach(self, connection: Connection) -> None: ...

    def make_link(
        self, direction: Direction, source: Side, sink: Side, owner: Connection
    ) -> Link: ...


# Reads while no toxic is active. Each read costs a recv, a send and an event-loop turn
# whatever its size, so on loopback 1 MiB reads take about two thirds of the CPU per byte
# that 256 KiB reads do (measured with `harness bench proxy --path tcp`). Pages of the
# buffer that no read reached are never made resident.
_FAST_READ_SIZE = 1024 * 1024
# Reads while toxics run: the chunk size toxics see (Toxiproxy's is 32 KiB).
_TOXIC_READ_SIZE = 256 * 1024
# From Python 3.12 a transport keeps a reference to what it could not send at once;
# before, it copied the rest into its own buffer.
_TRANSPORT_KEEPS_DATA = sys.version_info >= (3, 12)


class Side(asyncio.BufferedProtocol):
    """Protocol for one of the two sockets; a link's source for reading, sink for writing.

    A buffered protocol reads into one reusable buffer: allocating a fresh bytes object
    per read (what ``data_received`` implies) costs more than the copy itself.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._buffer = memoryview(bytearray(_FAST_READ_SIZE))
        self.transport: asyncio.Transport | None = None
        self.reader: Link | None = None
        self.write_paused = False
        self.lost = False
        self._pause_reasons: set[str] = set()
        self._drain_waiters: list[asyncio.Future[None]] = []
        # What arrived before the link existed. Pausing in connection_made should prevent
        # it, but some Python releases (3.11.2, Debian 12's) start reading regardless.
        self._early = bytearray()
        self._early_eof = False

    # -- asyncio callbacks --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Small writes must not wait for Nagle's algorithm: the proxy is meant to add
            # well under a millisecond per round trip.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # No data may arrive before both sockets and both links exist.
        self.pause_reading("setup")
        self.connection.side_made(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        reader = self.reader
        if reader is not None and not reader.direct:
            return self._buffer[:_TOXIC_READ_SIZE]
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        reader = self.reader
        if reader is None:
            self._early += self._buffer[:nbytes]
            if self.transport is not None:
                self.transport.pause_reading()  # honoured now that reading has begun
            return
        if reader.feed_view(self._buffer[:nbytes]):
            # The view was kept (queued, or buffered by a transport that could not send
            # it all at once), so later reads must not overwrite it.
            self._buffer = memoryview(bytearray(_FAST_READ_SIZE))

    def eof_received(self) -> bool:
        if self.reader is not None:
            self.reader.feed_eof()
        else:
            self._early_eof = True
        # Keep the socket open for writing: the other direction may still be flushing.
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._wake_writers()
        self.connection.side_lost(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self.connection.sink_paused(self, True)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writers()
        self.connection.sink_paused(self, False)

    def attach(self, reader: Link) -> None:
        """Give the side its link, and the link whatever arrived before it existed."""
        self.reader = reader
        if self._early:
            reader.feed(bytes(self._early))
            self._early.clear()
        if self._early_eof:
            reader.feed_eof()

    # -- Source -------------------------------------------------------------------------
    def pause_reading(self, reason: str) -> None:
        if not self._pause_reasons and self.transport is not None:
            self.transport.pause_reading()
        self._pause_reasons.add(reason)

    def resume_reading(self, reason: str) -> None:
        if reason not in self._pause_reasons:
            return
        self._pause_reasons.discard(reason)
        transport = self.transport
        if not self._pause_reasons and transport is not None and not transport.is_closing():
            transport.resume_reading()

    # -- Sink ---------------------------------------------------------------------------
    def write(self, data: bytes | memoryview) -> bool:
        transport = self.transport
        # Writing to a closed transport only makes asyncio log warnings; the data has
        # nowhere to go, as with a write to a socket the peer has closed.
        if transport is None or transport.is_closing():
            return False
        transport.write(data)
        return _TRANSPORT_KEEPS_DATA and transport.get_write_buffer_size() > 0

    async def wait_writable(self) -> None:
        while self.write_paused and not self.lost:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _wake_writers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- closing ------------------------------------------------------------------------
    def close(self) -> None:
        """Close after flushing what was already written."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self, reset: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0 turns close() into a TCP RST: "connection reset by peer".
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.abort()


class Connection:
    """A client connection accepted by a proxy, and its upstream counterpart."""

    def __init__(self, host: ConnectionHost, on_done: Callable[[Connection], None]) -> None:
        self._host = host
        self._on_done = on_done
        self.client = Side(self)
        self.server = Side(self)
        self.links: dict[Direction, Link] = {}
        self._dial_task: asyncio.Task[None] | None = None
        self.closed = False

    def side_made(self, side: Side) -> None:
        if side is self.client:
            loop = asyncio.get_running_loop()
            self._dial_task = loop.create_task(self._dial(), name="faultproxy-dial")

    async def _dial(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            host, port = split_upstream(self._host.upstream)
            await loop.create_connection(lambda: self.server, host, port)
        except (OSError, AddressError) as exc:
            # As in Toxiproxy the client was already accepted, so it sees EOF rather than
            # a refused connection.
            log.info("proxy %s: cannot reach upstream %s: %s", self._host.name,
                     self._host.upstream, exc)
            self.abort()
            return
        finally:
            self._dial_task = None
        if self.closed:
            self.server.abort(reset=False)
            return
        up = self._host.make_link("upstream", self.client, self.server, self)
        down = self._host.make_link("downstream", self.server, self.client, self)
        self.links = {"upstream": up, "downstream": down}
        self._host.attach(self)
        self.client.attach(up)
        self.server.attach(down)
        self.client.resume_reading("setup")
        self.server.resume_reading("setup")

    # -- events from the sides ----------------------------------------------------------
    def side_lost(self, side: Side) -> None:
        if self.closed:
            return
        if not self.links:
            self.abort()
        elif side.reader is not None:
            side.reader.feed_eof()

    def sink_paused(self, sink: Side, paused: bool) -> None:
        # The destination's buffer is full: stop reading from the socket that feeds it.
        source = self.server if sink is self.client else self.client
        if paused:
            source.pause_reading("sink")
        else:
            source.resume_reading("sink")

    # -- LinkOwner ----------------------------------------------------------------------
    def link_finished(self, link: Link) -> None:
        sink, other = (
            (self.server, self.links["downstream"])
            if link.direction == "upstream"
            else (self.client, self.links["upstream"])
        )
        sink.close()
        other.feed_eof()
        if all(each.finished for each in self.links.values()):
            self._done()

    def reset(self) -> None:
        self._teardown(reset=True)

    def abort(self) -> None:
        self._teardown(reset=False)

    def _teardown(self, reset: bool) -> list[asyncio.Task[None]]:
        tasks: list[asyncio.Task[None]] = []
        if self._dial_task is not None and self._dial_task is not asyncio.current_task():
            self._dial_task.cancel()
            tasks.append(self._dial_task)
        for link in self.links.values():
            pump = link.shutdown()
            if pump is not None:
                tasks.append(pump)
        self.client.abort(reset)
        self.server.abort(reset)
        self._done()
        return tasks

    def cut(self) -> list[asyncio.Task[None]]:
        """Abort now; return the tasks still winding down, for the caller to await."""
        return self._teardown(reset=False)

    def _done(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.links:
            self._host.detach(self)
        self._on_done(self)
