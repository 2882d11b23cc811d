"""When a broker client tries to connect again after a failed connection or publish.

A fixed backoff makes every outage look longer than it was: after a 10 s outage with
attempts doubling to 1 s apart, the first one after the heal comes half a second late on
average, and a backlog that then drains in 0.1 s is measured as drained in 0.6 s. So
between full attempts a client asks the broker cheaply whether it answers now (a probe: a
TCP connection that sends the protocol's greeting and waits for any reply), every
PROBE_INTERVAL_S, and attempts again as soon as it does:

- a probe that gets no answer (link cut, broker stopped: refused; paused: no reply) holds
  the next attempt back, and costs a refused connect;
- one that answers lets the attempt go, at once if a probe went unanswered since the last
  failure (the outage just ended), else after a backoff from FIRST_RETRY_S doubling to
  MAX_GAP_S (the broker answers but a full attempt still fails: it is booting, say);
- whatever the probes say, a full attempt is made at least every FALLBACK_S, the old
  backoff's cap, so a probe that is wrong (e.g. a link whose latency exceeds its timeout)
  never makes reconnection slower than it was without probes.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.02
MAX_GAP_S = 0.25
FALLBACK_S = 1.0
PROBE_INTERVAL_S = 0.02
PROBE_TIMEOUT_S = 0.25

# AMQP 0-9-1's protocol header: a broker answers it with Connection.Start.
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
_AMQP_DEFAULT_PORT = 5672
_KAFKA_DEFAULT_PORT = 9092
# ApiVersions (key 18) version 0, correlation id 1: every Kafka broker answers it before
# anything else is negotiated.
_KAFKA_CLIENT_ID = b"probe"
_KAFKA_API_VERSIONS = struct.pack(">hhih", 18, 0, 1, len(_KAFKA_CLIENT_ID)) + _KAFKA_CLIENT_ID
_KAFKA_REQUEST = struct.pack(">i", len(_KAFKA_API_VERSIONS)) + _KAFKA_API_VERSIONS

Probe = Callable[[], bool]


def probe_address(url: str) -> tuple[str, int, bytes]:
    """(host, port, greeting) of the broker a client URL names: `amqp://...` or
    `kafka://host:port[,...]` (the first bootstrap server)."""
    parts = urlsplit(url)
    if parts.scheme == "kafka":
        first = urlsplit(f"//{parts.netloc.split(',')[0]}")
        return first.hostname or "127.0.0.1", first.port or _KAFKA_DEFAULT_PORT, _KAFKA_REQUEST
    return parts.hostname or "127.0.0.1", parts.port or _AMQP_DEFAULT_PORT, _AMQP_HEADER


def broker_answers(host: str, port: int, greeting: bytes,
                   timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether something at host:port replies to `greeting` within timeout_s. A proxy in
    front of a dead broker accepts the connection and then closes it: no reply, False."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(greeting)
            return bool(sock.recv(1))
    except OSError:
        return False


def probe_for(url: str) -> Probe:
    host, port, greeting = probe_address(url)
    return lambda: broker_answers(host, port, greeting)


class Reconnect:
    """The wait between one client's connection attempts (module docstring). Call
    `failed(reason)` after each failed attempt, then `wait()`; `succeeded()` once one
    works. Logs the first failure of an outage and the reconnection, not every attempt."""

    def __init__(self, who: str, probe: Probe, stop: threading.Event,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._who = who
        self._probe = probe
        self._stop = stop
        self._clock = clock
        self._failures = 0
        self._down_since = 0.0
        # A probe went unanswered since the last failed attempt: the outage was still on.
        self._unanswered = False

    @property
    def failures(self) -> int:
        """Failed attempts since the last success."""
        return self._failures

    def failed(self, reason: str) -> None:
        if self._failures == 0:
            self._down_since = self._clock()
            log.warning("%s: %s; reconnecting as soon as the broker answers", self._who,
                        reason)
        else:
            log.debug("%s: attempt %d failed: %s", self._who, self._failures + 1, reason)
        self._failures += 1
        self._unanswered = False

    def succeeded(self) -> None:
        if self._failures:
            log.info("%s: reconnected after %d failed attempt(s), %.2f s after the first",
                     self._who, self._failures, self._clock() - self._down_since)
        self._failures = 0

    def backoff_s(self) -> float:
        """The wait before the next attempt while the broker answers probes."""
        if self._failures == 0:
            return 0.0
        return min(MAX_GAP_S, FIRST_RETRY_S * 2.0 ** (self._failures - 1))

    def wait(self) -> None:
        """Until the next attempt is due (or stop is set)."""
        started = self._clock()
        while not self._stop.is_set():
            elapsed = self._clock() - started
            if elapsed >= FALLBACK_S:
                return
            if self._probe():
                if self._unanswered:
                    return
                self._stop.wait(max(0.0, min(self.backoff_s(), FALLBACK_S) - elapsed))
                return
            self._unanswered = True
            self._stop.wait(PROBE_INTERVAL_S)
