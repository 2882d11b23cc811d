"""What each toxic does to real loopback traffic through the proxy.

Timing bounds are deliberately loose on the slow side (a loaded CI machine only ever makes
things later) and tight on the fast side, which is where a broken toxic would show.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Callable

import httpx
import pytest
from faultproxy_testkit import (
    IO_TIMEOUT,
    PeerServer,
    connect,
    greet_and_echo,
    greeter,
    read_until_closed,
    recv_exactly,
    round_trip,
)
from toxiproxy import Toxiproxy

pytestmark = pytest.mark.integration

PeerFactory = Callable[[Callable[[socket.socket], None]], PeerServer]


def make_proxy(toxiproxy: Toxiproxy, upstream: PeerServer, name: str = "fx") -> str:
    return str(toxiproxy.create(upstream=upstream.address, name=name).listen)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def test_no_toxic_round_trip_is_fast(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    with connect(listen) as sock:
        assert median_ms([round_trip(sock) for _ in range(20)]) < 20


def test_latency_delays_each_round_trip(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    toxiproxy.get_proxy("fx").add_toxic(type="latency", attributes={"latency": 60})
    with connect(listen) as sock:
        samples = [round_trip(sock) for _ in range(5)]
    assert 60 - 5 <= median_ms(samples) <= 60 + 15


def test_latency_jitter_stays_in_range(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    latency, jitter = 50, 20
    listen = make_proxy(toxiproxy, echo_server)
    toxiproxy.get_proxy("fx").add_toxic(
        type="latency", attributes={"latency": latency, "jitter": jitter})
    with connect(listen) as sock:
        samples = [round_trip(sock) * 1000 for _ in range(9)]
    assert all(latency - jitter - 2 <= s <= latency + jitter + 15 for s in samples), samples
    assert latency - jitter - 5 <= statistics.median(samples) <= latency + jitter + 15
    assert max(samples) - min(samples) > 1  # jitter actually varies the delay


def test_latency_applies_to_existing_connections_and_removal_restores(
    toxiproxy: Toxiproxy, echo_server: PeerServer
) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    proxy = toxiproxy.get_proxy("fx")
    with connect(listen) as sock:
        assert round_trip(sock) < 0.03
        proxy.add_toxic(type="latency", attributes={"latency": 80})
        assert round_trip(sock) >= 0.075
        proxy.destroy_toxic("latency_downstream")
        assert median_ms([round_trip(sock) for _ in range(5)]) < 30


def test_two_latency_toxics_add_up(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    proxy = toxiproxy.get_proxy("fx")
    proxy.add_toxic(type="latency", name="a", attributes={"latency": 40})
    proxy.add_toxic(type="latency", name="b", attributes={"latency": 40})
    with connect(listen) as sock:
        assert 75 <= median_ms([round_trip(sock) for _ in range(3)]) <= 80 + 20


@pytest.mark.parametrize("stream", ["upstream", "downstream"])
def test_stream_direction_is_respected(
    toxiproxy: Toxiproxy, peer_factory: PeerFactory, stream: str
) -> None:
    # The peer greets first (downstream data), then echoes (upstream + downstream).
    listen = make_proxy(toxiproxy, peer_factory(greet_and_echo))
    toxiproxy.get_proxy("fx").add_toxic(type="latency", stream=stream,
                                        attributes={"latency": 150})
    start = time.perf_counter()
    with connect(listen) as sock:
        assert recv_exactly(sock, 5) == b"hello"
        greeting = time.perf_counter() - start
        echo_time = round_trip(sock)
    if stream == "downstream":
        assert greeting >= 0.14
    else:
        assert greeting < 0.1  # client-to-server data only; the greeting is not delayed
    assert 0.14 <= echo_time < 0.4  # the round trip crosses the toxic once either way


def test_toxicity_zero_never_applies(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    toxiproxy.get_proxy("fx").add_toxic(type="latency", toxicity=0.0,
                                        attributes={"latency": 300})
    for _ in range(5):
        with connect(listen) as sock:
            assert round_trip(sock) < 0.1


def test_bandwidth_caps_the_rate(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    rate_kb, size = 200, 100_000  # 100 kB at 200 kB/s: 0.5 s
    listen = make_proxy(toxiproxy, echo_server)
    toxiproxy.get_proxy("fx").add_toxic(type="bandwidth", attributes={"rate": rate_kb})
    with connect(listen) as sock:
        start = time.perf_counter()
        sock.sendall(b"b" * size)
        assert len(recv_exactly(sock, size)) == size
        elapsed = time.perf_counter() - start
    rate = size / elapsed / 1000
    assert rate_kb * 0.75 <= rate <= rate_kb * 1.25, f"{rate:.0f} kB/s"


def test_timeout_drops_data_then_closes(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    toxiproxy.get_proxy("fx").add_toxic(type="timeout", attributes={"timeout": 200})
    with connect(listen) as sock:
        start = time.perf_counter()
        sock.sendall(b"lost")
        assert read_until_closed(sock, 2) == b""  # nothing delivered, then closed
        elapsed = time.perf_counter() - start
    assert 0.18 <= elapsed < 1.0


def test_timeout_zero_holds_until_removed(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    proxy = toxiproxy.get_proxy("fx")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    with connect(listen) as sock:
        sock.sendall(b"held")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)  # black hole: no reply, no close
        sock.settimeout(2)
        proxy.destroy_toxic("timeout_downstream")
        # As in Toxiproxy, removing the toxic closes the connections it dropped data on.
        assert read_until_closed(sock, 2) == b""


def test_reset_peer_resets_the_connection(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    toxiproxy.get_proxy("fx").add_toxic(type="reset_peer", attributes={"timeout": 100})
    with connect(listen) as sock:
        start = time.perf_counter()
        sock.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
        assert time.perf_counter() - start >= 0.09


def test_slicer_delivers_in_slices(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    toxiproxy.get_proxy("fx").add_toxic(
        type="slicer", attributes={"average_size": 100, "size_variation": 20, "delay": 20_000})
    payload = bytes(range(256)) * 4
    with connect(listen) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        pieces: list[bytes] = []
        while sum(map(len, pieces)) < len(payload) and len(pieces) < 100:
            pieces.append(sock.recv(65536))
        elapsed = time.perf_counter() - start
    assert b"".join(pieces) == payload
    assert len(pieces) >= 5
    assert max(map(len, pieces)) <= 200
    assert elapsed >= (len(pieces) - 1) * 0.018


def test_limit_data_closes_after_n_bytes(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    toxiproxy.get_proxy("fx").add_toxic(type="limit_data", attributes={"bytes": 100})
    with connect(listen) as sock:
        sock.sendall(b"x" * 60)
        assert recv_exactly(sock, 60) == b"x" * 60
        sock.sendall(b"y" * 60)
        assert read_until_closed(sock, 2) == b"y" * 40  # truncated at the limit, then EOF


def test_slow_close_delays_the_close(toxiproxy: Toxiproxy, peer_factory: PeerFactory) -> None:
    listen = make_proxy(toxiproxy, peer_factory(greeter(b"bye")))
    proxy = toxiproxy.get_proxy("fx")
    with connect(listen) as sock:
        assert read_until_closed(sock, 2) == b"bye"  # no toxic: closed right away

    proxy.add_toxic(type="slow_close", attributes={"delay": 300})
    with connect(listen) as sock:
        assert recv_exactly(sock, 3) == b"bye"
        start = time.perf_counter()
        assert read_until_closed(sock, 2) == b""
        assert time.perf_counter() - start >= 0.25


def test_disabled_proxy_cuts_and_refuses(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    proxy = toxiproxy.get_proxy("fx")
    with connect(listen) as sock:
        round_trip(sock)
        proxy.disable()
        # The existing connection is cut: EOF, or a reset if the close raced unread data.
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(10) == b""
        with pytest.raises(ConnectionRefusedError):
            connect(listen).close()
    proxy.enable()
    with connect(listen) as sock:
        round_trip(sock)


def test_unreachable_upstream_gives_eof(toxiproxy: Toxiproxy) -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        dead = f"127.0.0.1:{placeholder.getsockname()[1]}"
    listen = str(toxiproxy.create(upstream=dead, name="dead").listen)
    with connect(listen) as sock:
        assert read_until_closed(sock, 2) == b""


def test_upstream_close_closes_client(toxiproxy: Toxiproxy, peer_factory: PeerFactory) -> None:
    listen = make_proxy(toxiproxy, peer_factory(greeter(b"x" * 300_000)))
    with connect(listen) as sock:
        assert len(read_until_closed(sock, 2)) == 300_000


def test_bulk_transfer_is_intact(toxiproxy: Toxiproxy, echo_server: PeerServer,
                                 api: httpx.Client) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    payload = bytes(range(256)) * 1024  # 256 KiB: fits loopback buffers, so no reader thread
    with connect(listen) as sock:
        sock.sendall(payload[: len(payload) // 2])
        # A toxic added mid-stream moves the link onto the toxic path without reordering.
        api.post("/proxies/fx/toxics", json={"type": "noop"})
        sock.sendall(payload[len(payload) // 2 :])
        assert recv_exactly(sock, len(payload)) == payload


def test_toxic_added_mid_stream_takes_effect_on_that_connection(
    toxiproxy: Toxiproxy, echo_server: PeerServer
) -> None:
    listen = make_proxy(toxiproxy, echo_server)
    block = b"s" * 65536
    stop = threading.Event()
    with connect(listen) as sock:

        def send() -> None:
            with contextlib.suppress(OSError):  # the toxic closes the connection
                while not stop.is_set():
                    sock.sendall(block)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            flowed = 0
            while flowed < 8 * 1024 * 1024:  # well under way on the no-toxic fast path
                flowed += len(sock.recv(1 << 20))
            toxiproxy.get_proxy("fx").add_toxic(type="limit_data", stream="downstream",
                                                attributes={"bytes": 1000})
            # The sender never stops by itself, so only the toxic can end this stream.
            after, closed, deadline = 0, False, time.monotonic() + 5
            while not closed and time.monotonic() < deadline:
                try:
                    chunk = sock.recv(1 << 20)
                except ConnectionResetError:
                    chunk = b""
                after += len(chunk)
                closed = not chunk
        finally:
            stop.set()
            sender.join(IO_TIMEOUT)
    assert closed, f"still streaming 5 s after limit_data was added ({after} bytes since)"
    # What was in flight (socket buffers both ways) may still arrive; a fast path that
    # ignored the toxic would have carried gigabytes in those seconds.
    assert after < 64 * 1024 * 1024, after
