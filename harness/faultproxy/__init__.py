"""A Toxiproxy-compatible fault proxy written in pure Python asyncio.

It serves Toxiproxy's HTTP API v2 (unmodified clients such as ``toxiproxy-python`` work
against it) and proxies TCP through toxics: latency with jitter, bandwidth, slow_close,
timeout, reset_peer, slicer, limit_data and noop, each with a ``toxicity`` probability and
an ``upstream``/``downstream`` stream.

Deliberate improvement over Toxiproxy: all toxic randomness (jitter, slicer cut points,
toxicity rolls) comes from one ``random.Random`` seeded by ``--seed`` (default 0), so a
run with the same seed and the same sequence of events is reproducible. Toxiproxy's
``-seed`` flag has had no effect since 2.9.0.

Run it with ``python -m harness.faultproxy --port 8474`` or in-process with
:class:`FaultProxyServer`.

Other deliberate differences from Toxiproxy 2.12:

* No ``/metrics`` endpoint and no 25 s handler timeout: API calls never wait on a stream
  that is blocked writing, so they cannot hang into a 503.
* ``reset_peer`` sets ``SO_LINGER=0`` when it fires rather than at connection start, so it
  also resets connections opened before the toxic was added, and a toxic that lost its
  toxicity roll does not turn ordinary closes into resets (Toxiproxy issue #603).
* Removing a ``timeout`` toxic closes only the connections on which it was active.
* ``bandwidth`` with ``rate`` <= 0 holds data until the toxic changes instead of spinning
  or crashing; ``slicer`` treats ``average_size`` < 1 as 1 and keeps cut points in range.
* The toxics of one direction run in a single task per connection, not one goroutine each:
  data order and per-toxic delays are the same, but with several waiting toxics in one
  direction a chunk held by a later toxic delays the next chunk's turn at an earlier one.
  Reads are up to 256 KiB while a toxic is active (Toxiproxy: 32 KiB), which is the
  chunk size toxics see, and up to 1 MiB while none is.
* JSON decoder and resolver error texts approximate Go's (same status and prefix); the
  request-id format differs; ``host:service`` ports are not resolved.
"""

from __future__ import annotations

from harness.faultproxy.api import TOXIPROXY_VERSION
from harness.faultproxy.cli import main
from harness.faultproxy.errors import ApiError
from harness.faultproxy.server import FaultProxyApp, FaultProxyServer, serve
from harness.faultproxy.toxics import TOXIC_TYPES

__all__ = [
    "TOXIC_TYPES",
    "TOXIPROXY_VERSION",
    "ApiError",
    "FaultProxyApp",
    "FaultProxyServer",
    "main",
    "serve",
]
