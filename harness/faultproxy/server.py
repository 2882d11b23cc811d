"""Running the fault proxy: in the foreground (:func:`serve`) or in a background thread.

:class:`FaultProxyServer` is what tests and the harness use: it owns an event loop in a
daemon-free background thread, and :meth:`FaultProxyServer.stop` closes every listener,
connection and task before joining that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from harness.errors import SetupError
from harness.faultproxy import schema
from harness.faultproxy.addresses import format_address
from harness.faultproxy.api import ToxiproxyApi
from harness.faultproxy.httpserver import HttpServer
from harness.faultproxy.registry import ProxyRegistry

_START_TIMEOUT = 10.0


class FaultProxyApp:
    """The API server and its proxies, bound to the running event loop."""

    def __init__(self, seed: int = 0) -> None:
        self.registry = ProxyRegistry(random.Random(seed))
        self._http = HttpServer(ToxiproxyApi(self.registry).handle)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        return await self._http.start(host, port)

    async def load_config(self, path: Path) -> None:
        """Create the proxies listed in a ``/populate``-shaped JSON file (``-config``)."""
        entries = schema.populate_input(path.read_bytes())
        _done, error = await self.registry.populate(entries)
        if error is not None:
            raise error

    async def close(self) -> None:
        await self._http.close()
        await self.registry.close()


async def serve(
    host: str = "127.0.0.1",
    port: int = 8474,
    *,
    seed: int = 0,
    config: Path | None = None,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the API on ``host:port`` until ``stop`` is set (or the task is cancelled).

    ``on_ready`` receives the API URL, with the real port when ``port`` is 0.
    """
    app = FaultProxyApp(seed)
    try:
        bound_host, bound_port = await app.start(host, port)
        if config is not None:
            await app.load_config(config)
        if on_ready is not None:
            on_ready(f"http://{format_address(bound_host, bound_port)}")
        await (stop or asyncio.Event()).wait()
    finally:
        await app.close()


class FaultProxyServer:
    """A fault proxy running in a background thread, for tests and in-process use.

    >>> with FaultProxyServer() as server:
    ...     Toxiproxy().update_api_consumer(server.host, server.port)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int = 0) -> None:
        self._requested = (host, port)
        self._seed = seed
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._stop_requested = threading.Event()
        self._url: str | None = None
        self._error: BaseException | None = None

    @property
    def api_url(self) -> str:
        if self._url is None:
            raise SetupError("the fault proxy is not running; call start() first")
        return self._url

    @property
    def host(self) -> str:
        return self.api_url.removeprefix("http://").rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.api_url.rsplit(":", 1)[1])

    def start(self) -> None:
        if self._thread is not None:
            raise SetupError("the fault proxy is already running")
        self._ready.clear()
        self._stop_requested.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=False)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            self.stop()
            raise SetupError(f"the fault proxy did not start within {_START_TIMEOUT:.0f} s")
        if self._error is not None:
            error = self._error
            self.stop()
            raise SetupError(f"the fault proxy could not start: {error}") from error

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        # Seen by _main if its loop is not up yet; otherwise the loop is told directly.
        self._stop_requested.set()
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            # RuntimeError: the loop already closed because start failed; nothing to stop.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_event.set)
        thread.join()
        self._loop = self._stop_event = None
        self._url = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the thread that called start()
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stop_requested.is_set():
            return

        def ready(url: str) -> None:
            self._url = url
            self._ready.set()

        host, port = self._requested
        await serve(host, port, seed=self._seed, on_ready=ready, stop=self._stop_event)

    def __enter__(self) -> FaultProxyServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
