"""Loopback peers and socket helpers shared by the fault proxy tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

IO_TIMEOUT = 3.0


class PeerServer:
    """A threaded TCP server on 127.0.0.1 standing in for the proxied service.

    ``behaviour`` runs once per accepted connection in its own thread.
    """

    def __init__(self, behaviour: Callable[[socket.socket], None]) -> None:
        self._behaviour = behaviour
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # listener shut down by close()
            conn.settimeout(IO_TIMEOUT)
            worker = threading.Thread(target=self._run, args=(conn,), daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(worker)
            worker.start()

    def _run(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self._behaviour(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(IO_TIMEOUT)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for worker in threads:
            worker.join(IO_TIMEOUT)


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)


def greeter(payload: bytes) -> Callable[[socket.socket], None]:
    """Send ``payload`` as soon as the connection opens, then close."""

    def behaviour(conn: socket.socket) -> None:
        conn.sendall(payload)

    return behaviour


def greet_and_echo(conn: socket.socket) -> None:
    conn.sendall(b"hello")
    echo(conn)


def listen_port(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def connect(listen: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", listen_port(listen)), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds for ``payload`` to come back from an echo server."""
    start = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - start


def read_until_closed(sock: socket.socket, limit: float = IO_TIMEOUT) -> bytes:
    """Everything the peer sends until it closes (bounded by ``limit`` seconds)."""
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    raise AssertionError(f"connection still open after {limit} s ({len(data)} bytes read)")
