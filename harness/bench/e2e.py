"""The raw broker's end-to-end latency at a steady rate: a producer and a consumer of the
harness's own, on one broker, with nothing of the pipeline in between.

The producer sends at `rate` messages per second (each body carries its sequence number
and the moment it was sent); the consumer, on its own thread and connection, notes when
each arrives. Latency is arrival minus send, both read from one clock in one process.
A few warm-up messages go first and must arrive before anything is measured, so the
consumer is subscribed (or assigned) and both connections are open. Every loop is bounded
in count and time.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from harness.errors import SetupError

# Sequence number and send time, padded to about the size of a product event.
_HEADER = struct.Struct("!qd")
BODY_SIZE = 300
WARMUP_MESSAGES = 20
WARMUP_TIMEOUT_S = 30.0
# After the last send, how long the consumer may take to receive the rest.
DRAIN_TIMEOUT_S = 30.0
POLL_S = 0.1


class Sender(Protocol):
    def send(self, body: bytes) -> None: ...

    def close(self) -> None: ...


class Receiver(Protocol):
    def poll(self, timeout_s: float) -> list[bytes]:
        """Bodies that arrived, waiting up to `timeout_s` for the first."""
        ...

    def close(self) -> None: ...


def encode(sequence: int, sent_at: float) -> bytes:
    return _HEADER.pack(sequence, sent_at).ljust(BODY_SIZE, b"x")


def decode(body: bytes) -> tuple[int, float]:
    sequence, sent_at = _HEADER.unpack_from(body)
    return int(sequence), float(sent_at)


@dataclass
class _Arrivals:
    """What the consumer thread saw, by sequence number (warm-up ones are negative)."""

    latencies_ms: dict[int, float] = field(default_factory=dict)
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, sequences: range) -> int:
        with self.lock:
            return sum(1 for s in sequences if s in self.latencies_ms)


@dataclass(frozen=True)
class EndToEnd:
    """Latencies (ms) of the measured messages that arrived; `sent` were sent."""

    sent: int
    latencies_ms: list[float]
    send_rate: float  # what the producer achieved, messages per second

    @property
    def received(self) -> int:
        return len(self.latencies_ms)


def measure(open_sender: Callable[[], Sender], open_receiver: Callable[[], Receiver],
            rate: float, duration_s: float, clock: Callable[[], float] = time.perf_counter,
            sleep: Callable[[float], None] = time.sleep) -> EndToEnd:
    """Send `rate * duration_s` messages at `rate` per second and time each one's way to
    the consumer. The receiver is opened and used on its own thread only (a pika
    connection must stay on one thread)."""
    count = max(1, round(rate * duration_s))
    arrivals = _Arrivals()
    stop = threading.Event()

    def consume() -> None:
        try:
            receiver = open_receiver()
        except BaseException as exc:  # reported to the caller, which raises it
            arrivals.error = exc
            return
        try:
            while not stop.is_set():
                for body in receiver.poll(POLL_S):
                    now = clock()
                    sequence, sent_at = decode(body)
                    with arrivals.lock:
                        arrivals.latencies_ms.setdefault(sequence, (now - sent_at) * 1000)
        except BaseException as exc:
            arrivals.error = exc
        finally:
            receiver.close()

    thread = threading.Thread(target=consume, name="bench-e2e-consumer", daemon=True)
    thread.start()
    sender = open_sender()
    try:
        warmup = range(-WARMUP_MESSAGES, 0)
        for sequence in warmup:
            sender.send(encode(sequence, clock()))
        _wait_for(arrivals, warmup, clock() + WARMUP_TIMEOUT_S, clock, sleep, "warm-up")
        began = clock()
        for sequence in range(count):
            due = began + sequence / rate
            if (ahead := due - clock()) > 0:
                sleep(ahead)
            sender.send(encode(sequence, clock()))
        send_s = clock() - began
        measured = range(count)
        _wait_for(arrivals, measured, clock() + DRAIN_TIMEOUT_S, clock, sleep, None)
    finally:
        stop.set()
        sender.close()
        thread.join(WARMUP_TIMEOUT_S)
    with arrivals.lock:
        latencies = [arrivals.latencies_ms[s] for s in range(count) if s in arrivals.latencies_ms]
    return EndToEnd(count, latencies, round(count / send_s, 1) if send_s > 0 else float(count))


def _wait_for(arrivals: _Arrivals, sequences: range, deadline: float,
              clock: Callable[[], float], sleep: Callable[[float], None],
              must_all: str | None) -> None:
    """Until every message of `sequences` arrived or `deadline` passed; when `must_all`
    names a phase, missing any is a SetupError (nothing can be measured then)."""
    while arrivals.seen(sequences) < len(sequences) and clock() < deadline:
        if arrivals.error is not None:
            break
        sleep(0.01)
    if arrivals.error is not None:
        raise SetupError(f"the bench consumer failed: {type(arrivals.error).__name__}: "
                         f"{arrivals.error}") from arrivals.error
    if must_all and arrivals.seen(sequences) < len(sequences):
        raise SetupError(f"the bench consumer received {arrivals.seen(sequences)} of "
                         f"{len(sequences)} {must_all} messages within "
                         f"{WARMUP_TIMEOUT_S:.0f} s: the broker does not deliver")
