"""Overhead of the fault proxy with no toxics, compared with a direct connection.

Against one echo server on loopback, and in the same run, it measures bulk throughput
(one thread sends while the caller reads the echo back) and the round-trip time of small
ping-pong messages, directly and through a proxy. The proxy runs as a separate
``python -m harness.faultproxy`` process by default, as it does in real use, so it does not
share a GIL with the echo server and the client.

    python -c 'from harness.faultproxy.bench import run_bench; print(run_bench())'
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

from harness.errors import SetupError
from harness.faultproxy.server import FaultProxyServer

_BLOCK = 256 * 1024
_PING = b"p" * 64
_IO_TIMEOUT = 10.0


class _EchoServer:
    """A thread-per-connection echo server on 127.0.0.1 (blocking I/O releases the GIL)."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, name="bench-echo", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # listener closed by close()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.append(conn)
            worker = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        buffer = bytearray(_BLOCK)
        view = memoryview(buffer)
        with conn:
            try:
                while n := conn.recv_into(buffer):
                    conn.sendall(view[:n])
            except OSError:
                return  # the client went away mid-transfer

    def close(self) -> None:
        # close() alone does not wake a thread blocked in accept() on Linux; shutdown does.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(_IO_TIMEOUT)
        for worker in self._threads:
            worker.join(_IO_TIMEOUT)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=_IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _throughput(port: int, seconds: float) -> float:
    """MB/s (10**6 bytes) echoed back through ``port`` while sending for ``seconds``."""
    block = b"x" * _BLOCK
    sent = 0
    done = threading.Event()

    def send() -> None:
        nonlocal sent
        deadline = time.perf_counter() + seconds
        try:
            while time.perf_counter() < deadline:
                sock.sendall(block)
                sent += len(block)
        finally:
            done.set()

    with _connect(port) as sock:
        buffer = bytearray(_BLOCK)
        received = 0
        started = time.perf_counter()
        sender = threading.Thread(target=send, name="bench-send")
        sender.start()
        try:
            while not (done.is_set() and received >= sent):
                # Poll rather than block: the sender may finish between the check above and
                # a blocking read that would then wait for bytes that never come.
                if not select.select([sock], [], [], 0.05)[0]:
                    continue
                n = sock.recv_into(buffer)
                if n == 0:
                    raise SetupError("the echo connection closed during the benchmark")
                received += n
        finally:
            sender.join(_IO_TIMEOUT + seconds)
        elapsed = time.perf_counter() - started
    return received / elapsed / 1e6


def _round_trips(port: int, seconds: float, max_count: int = 200_000) -> list[float]:
    """Round-trip times (s) of 64-byte ping-pongs through ``port``."""
    times: list[float] = []
    with _connect(port) as sock:
        deadline = time.perf_counter() + seconds
        while len(times) < max_count and time.perf_counter() < deadline:
            start = time.perf_counter()
            sock.sendall(_PING)
            got = 0
            while got < len(_PING):
                chunk = sock.recv(len(_PING) - got)
                if not chunk:
                    raise SetupError("the echo connection closed during the benchmark")
                got += len(chunk)
            times.append(time.perf_counter() - start)
    return times


@contextlib.contextmanager
def _proxy_api(in_process: bool) -> Iterator[str]:
    """Yield the API URL of a fault proxy, in a subprocess or in this process."""
    if in_process:
        with FaultProxyServer() as server:
            yield server.api_url
        return
    command = [sys.executable, "-m", "harness.faultproxy", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("faultproxy listening on "):
            raise SetupError(f"the fault proxy did not start (first output line: {line!r})")
        yield line.rsplit(" ", 1)[1]
    finally:
        process.terminate()
        try:
            process.wait(_IO_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _create_proxy(api_url: str, upstream_port: int) -> int:
    body = json.dumps(
        {"name": "bench", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream_port}"}
    ).encode()
    request = urllib.request.Request(f"{api_url}/proxies", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=_IO_TIMEOUT) as reply:
        listen = str(json.load(reply)["listen"])
    return int(listen.rsplit(":", 1)[1])


def run_bench(duration_s: float = 2.0, *, in_process: bool = False) -> dict[str, float]:
    """Measure proxy overhead with no toxics; ``duration_s`` is split over four phases.

    Returns MB/s and p50 round-trip ms for both paths plus ``throughput_ratio``
    (proxied / direct) and ``added_p50_ms`` (proxied p50 minus direct p50).
    """
    phase = max(duration_s, 0.04) / 4
    echo = _EchoServer()
    try:
        with _proxy_api(in_process) as api_url:
            proxy_port = _create_proxy(api_url, echo.port)
            # Short warm-up so connection setup and first-allocation costs stay out.
            _round_trips(proxy_port, min(0.05, phase))
            direct_mbps = _throughput(echo.port, phase)
            proxy_mbps = _throughput(proxy_port, phase)
            direct_rtt = statistics.median(_round_trips(echo.port, phase))
            proxy_rtt = statistics.median(_round_trips(proxy_port, phase))
    finally:
        echo.close()
    return {
        "direct_mbps": round(direct_mbps, 1),
        "proxy_mbps": round(proxy_mbps, 1),
        "throughput_ratio": round(proxy_mbps / direct_mbps, 3),
        "direct_p50_ms": round(direct_rtt * 1000, 4),
        "proxy_p50_ms": round(proxy_rtt * 1000, 4),
        "added_p50_ms": round((proxy_rtt - direct_rtt) * 1000, 4),
    }
