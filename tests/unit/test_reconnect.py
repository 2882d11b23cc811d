"""The wait between a broker client's connection attempts (reference_services/common/
reconnect.py): probes decide when the next attempt goes, with a backoff and a fallback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from reference_services.common import reconnect
from reference_services.common.reconnect import (
    Reconnect,
    broker_answers,
    probe_address,
)


def test_probe_address_of_each_broker_url() -> None:
    assert probe_address("amqp://guest:guest@127.0.0.1:5679/%2F")[:2] == ("127.0.0.1", 5679)
    assert probe_address("amqp://localhost/%2F")[:2] == ("localhost", 5672)
    host, port, greeting = probe_address("kafka://127.0.0.1:19092,127.0.0.1:19093")
    assert (host, port) == ("127.0.0.1", 19092)
    # ApiVersions: size prefix, then api key 18.
    assert int.from_bytes(greeting[:4], "big") == len(greeting) - 4
    assert int.from_bytes(greeting[4:6], "big") == 18


def _server(reply: bytes | None) -> Iterator[int]:
    """A listener that answers each connection's first bytes with `reply` (None: closes)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(64)
                if reply is not None:
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    listener.close()


@pytest.fixture
def answering() -> Iterator[int]:
    yield from _server(b"\x01")


@pytest.fixture
def closing() -> Iterator[int]:
    yield from _server(None)


def test_a_broker_that_replies_answers(answering: int) -> None:
    assert broker_answers("127.0.0.1", answering, b"AMQP\x00\x00\x09\x01")


def test_a_proxy_that_closes_does_not_answer(closing: int) -> None:
    # A proxy whose upstream is dead accepts, then closes without a byte.
    assert not broker_answers("127.0.0.1", closing, b"AMQP\x00\x00\x09\x01")


def test_a_closed_port_does_not_answer() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    assert not broker_answers("127.0.0.1", port, b"AMQP\x00\x00\x09\x01", timeout_s=0.2)


def test_backoff_doubles_from_the_first_retry_to_the_cap() -> None:
    waits = Reconnect("t", lambda: True, threading.Event())
    assert waits.backoff_s() == 0.0
    seen = []
    for _ in range(6):
        waits.failed("x")
        seen.append(waits.backoff_s())
    assert seen[0] == reconnect.FIRST_RETRY_S
    assert seen[1] == 2 * reconnect.FIRST_RETRY_S
    assert seen[-1] == reconnect.MAX_GAP_S
    waits.succeeded()
    assert waits.failures == 0


def test_the_first_answer_after_an_outage_goes_at_once() -> None:
    answers = iter([False, False, True])
    calls = []

    def probe() -> bool:
        calls.append(time.monotonic())
        return next(answers)

    waits = Reconnect("t", probe, threading.Event())
    for _ in range(8):  # the backoff is at its cap by now
        waits.failed("refused")
    started = time.monotonic()
    waits.wait()
    elapsed = time.monotonic() - started
    assert len(calls) == 3
    # Two probe intervals, not the 0.25 s backoff: the outage just ended.
    assert elapsed < reconnect.MAX_GAP_S - 0.05


def test_a_broker_that_always_answers_gets_the_backoff() -> None:
    waits = Reconnect("t", lambda: True, threading.Event())
    for _ in range(8):
        waits.failed("handshake failed")
    started = time.monotonic()
    waits.wait()
    assert time.monotonic() - started >= reconnect.MAX_GAP_S - 0.01


def test_probes_never_hold_an_attempt_past_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconnect, "FALLBACK_S", 0.2)
    waits = Reconnect("t", lambda: False, threading.Event())
    waits.failed("refused")
    started = time.monotonic()
    waits.wait()
    assert 0.2 <= time.monotonic() - started < 0.5


def test_stop_ends_the_wait() -> None:
    stop = threading.Event()
    waits = Reconnect("t", lambda: False, stop)
    waits.failed("refused")
    threading.Timer(0.05, stop.set).start()
    started = time.monotonic()
    waits.wait()
    assert time.monotonic() - started < 0.5
