"""Overhead of the fault proxy with no toxics, compared with a direct connection.

On raw TCP, against servers of the bench's own on loopback, each figure taken directly
and through a proxy in the same run:

- stream: MB/s of a one-way bulk stream into a sink, from the first byte sent until the
  sink has read the last (the shape of a publisher's traffic);
- echo: MB/s echoed back while one thread sends and the caller reads (both directions
  loaded at once);
- round trip: p50 of 64-byte ping-pongs;
- CPU: seconds of CPU per GB carried, of the proxy process on the proxied rounds and of
  the bench's own process (its clients and servers) on the direct ones. Loopback TCP is
  CPU-bound, so on a machine whose cores are all busy the proxy's throughput ratio cannot
  exceed about direct / (direct + proxy): this says what a low ratio is made of.

Rounds alternate direct and proxied, ``repeats`` times, so drift on a shared machine hits
both alike; throughput figures are medians over rounds. The proxy runs as a separate
``python -m harness.faultproxy`` process by default, as it does in real use, so it does
not share a GIL with the servers and the clients.

    python -c 'from harness.faultproxy.bench import run_bench; print(run_bench())'
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from harness.errors import SetupError
from harness.faultproxy.server import FaultProxyServer

_BLOCK = 256 * 1024
_PING = b"p" * 64
_IO_TIMEOUT = 10.0
# Per round: stream, echo and round trip, each direct and proxied.
_PHASES = 6


def _echo(conn: socket.socket) -> None:
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    while n := conn.recv_into(buffer):
        conn.sendall(view[:n])


def _sink(conn: socket.socket) -> None:
    """Read until EOF; closing then tells the streaming client that all has arrived."""
    buffer = bytearray(_BLOCK)
    while conn.recv_into(buffer):
        pass


class _PeerServer:
    """A thread-per-connection server on 127.0.0.1 (blocking I/O releases the GIL)."""

    def __init__(self, serve: Callable[[socket.socket], None], name: str) -> None:
        self._serve = serve
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, name=name, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # listener closed by close()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.append(conn)
            worker = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            try:
                self._serve(conn)
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


def _stream(port: int, seconds: float) -> tuple[float, int]:
    """(MB/s, bytes) of a one-way stream into the sink at ``port`` for ``seconds``."""
    block = b"x" * _BLOCK
    sent = 0
    with _connect(port) as sock:
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            sock.sendall(block)
            sent += len(block)
        sock.shutdown(socket.SHUT_WR)
        # The sink closes once it has read everything: the stream has fully arrived.
        if sock.recv(1) != b"":
            raise SetupError("the sink answered during the benchmark")
        elapsed = time.perf_counter() - started
    return sent / elapsed / 1e6, sent


def _throughput(port: int, seconds: float) -> tuple[float, int]:
    """(MB/s, bytes) echoed back through ``port`` while sending for ``seconds``."""
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
    return received / elapsed / 1e6, received


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


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far; None where /proc cannot say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # Fields 14 and 15 of stat(5) (utime, stime), counted here from field 3, the state.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _proxy_api(in_process: bool) -> Iterator[tuple[str, int | None]]:
    """Yield the API URL of a fault proxy and, when it runs in a subprocess, its pid."""
    if in_process:
        with FaultProxyServer() as server:
            yield server.api_url, None
        return
    command = [sys.executable, "-m", "harness.faultproxy", "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("faultproxy listening on "):
            raise SetupError(f"the fault proxy did not start (first output line: {line!r})")
        yield line.rsplit(" ", 1)[1], process.pid
    finally:
        process.terminate()
        try:
            process.wait(_IO_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _create_proxy(api_url: str, name: str, upstream_port: int) -> int:
    body = json.dumps(
        {"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream_port}"}
    ).encode()
    request = urllib.request.Request(f"{api_url}/proxies", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=_IO_TIMEOUT) as reply:
        listen = str(json.load(reply)["listen"])
    return int(listen.rsplit(":", 1)[1])


class _CpuMeter:
    """CPU seconds per GB carried: the bench's own process on direct rounds, the proxy
    process on proxied ones (a byte echoed counts twice: it crosses the proxy twice)."""

    def __init__(self, proxy_pid: int | None) -> None:
        self._proxy_pid = proxy_pid
        self.cpu_s = {"direct": 0.0, "proxied": 0.0}
        self.carried = {"direct": 0, "proxied": 0}
        self.known = proxy_pid is not None

    def measure(self, kind: str, run: Callable[[], tuple[float, int]], *,
                crossings: int) -> float:
        """Run one throughput phase; return its MB/s."""
        read: Callable[[], float | None] = _own_cpu_s
        if kind == "proxied":
            pid = self._proxy_pid
            read = (lambda: _process_cpu_s(pid)) if pid is not None else (lambda: None)
        before = read()
        mbps, carried = run()
        after = read()
        if before is None or after is None:
            self.known = False
        else:
            self.cpu_s[kind] += after - before
            self.carried[kind] += carried * crossings
        return mbps

    def per_gb(self, kind: str) -> float | None:
        if not self.known or self.carried[kind] == 0:
            return None
        return round(self.cpu_s[kind] / (self.carried[kind] / 1e9), 3)


def run_bench(duration_s: float = 2.0, *, repeats: int = 1,
              in_process: bool = False) -> dict[str, float]:
    """Measure proxy overhead with no toxics: ``repeats`` rounds of ``duration_s`` each,
    split over the six phases of a round.

    Returns MB/s of the stream (``stream_*``) and the echo (``direct_mbps``,
    ``proxy_mbps``), each with its ratio (proxied / direct; ``throughput_ratio`` is the
    echo's), p50 round-trip ms of both paths and ``added_p50_ms``, and CPU seconds per GB
    carried (``direct_cpu_s_per_gb``, ``proxy_cpu_s_per_gb``; left out when the proxy
    runs in process, where its CPU cannot be told apart).
    """
    phase = max(duration_s, 0.06) / _PHASES
    echo = _PeerServer(_echo, "bench-echo")
    sink = _PeerServer(_sink, "bench-sink")
    stream: dict[str, list[float]] = {"direct": [], "proxied": []}
    echoed: dict[str, list[float]] = {"direct": [], "proxied": []}
    rtts: dict[str, list[float]] = {"direct": [], "proxied": []}
    try:
        with _proxy_api(in_process) as (api_url, proxy_pid):
            ports = {"direct": (sink.port, echo.port),
                     "proxied": (_create_proxy(api_url, "bench-sink", sink.port),
                                 _create_proxy(api_url, "bench-echo", echo.port))}
            cpu = _CpuMeter(proxy_pid)
            # Short warm-up so connection setup and first-allocation costs stay out.
            _round_trips(ports["proxied"][1], min(0.05, phase))
            for _ in range(max(1, repeats)):
                for kind, (sink_port, echo_port) in ports.items():
                    stream[kind].append(cpu.measure(kind, partial(_stream, sink_port, phase),
                                                    crossings=1))
                    echoed[kind].append(cpu.measure(
                        kind, partial(_throughput, echo_port, phase), crossings=2))
                    rtts[kind].extend(_round_trips(echo_port, phase))
    finally:
        echo.close()
        sink.close()
    stream_direct, stream_proxy = (statistics.median(stream[k]) for k in ("direct", "proxied"))
    direct_mbps, proxy_mbps = (statistics.median(echoed[k]) for k in ("direct", "proxied"))
    direct_rtt, proxy_rtt = (statistics.median(rtts[k]) for k in ("direct", "proxied"))
    figures = {
        "stream_direct_mbps": round(stream_direct, 1),
        "stream_proxy_mbps": round(stream_proxy, 1),
        "stream_ratio": round(stream_proxy / stream_direct, 3),
        "direct_mbps": round(direct_mbps, 1),
        "proxy_mbps": round(proxy_mbps, 1),
        "throughput_ratio": round(proxy_mbps / direct_mbps, 3),
        "direct_p50_ms": round(direct_rtt * 1000, 4),
        "proxy_p50_ms": round(proxy_rtt * 1000, 4),
        "added_p50_ms": round((proxy_rtt - direct_rtt) * 1000, 4),
    }
    direct_cpu, proxy_cpu = cpu.per_gb("direct"), cpu.per_gb("proxied")
    if direct_cpu is not None and proxy_cpu is not None:
        figures |= {"direct_cpu_s_per_gb": direct_cpu, "proxy_cpu_s_per_gb": proxy_cpu}
    return figures
