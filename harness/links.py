"""Network links of the system under test, each through a named fault proxy.

Every link that matters (relay -> broker, and for each consumer: consumer -> broker,
consumer -> publisher API, and on PostgreSQL consumer -> its database) is a proxy on a
Toxiproxy-API server: ours (`harness.faultproxy`) here, or the real Toxiproxy where it
exists. The harness talks to it only through toxiproxy-python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import NotFound, ProxyExists
from toxiproxy.proxy import Proxy

from harness.consumers import FIRST, broker_link, db_link, publisher_link
from harness.errors import FaultError
from harness.runtime.base import Endpoint
from harness.runtime.ports import free_port

RELAY_BROKER = "relay_broker"
# The first consumer's links; consumer k's are consumer<k>_broker, consumer<k>_publisher
# and consumer<k>_db (harness/consumers.py).
CONSUMER_BROKER = broker_link(FIRST)
CONSUMER_PUBLISHER = publisher_link(FIRST)
# Exists only with the services on PostgreSQL: an SQLite file has no connection.
CONSUMER_DB = db_link(FIRST)
# Every kind of link: the relay's, and any consumer's as its role (harness.consumers.role).
LINKS = (RELAY_BROKER, CONSUMER_BROKER, CONSUMER_PUBLISHER, CONSUMER_DB)

T = TypeVar("T")


class Links:
    def __init__(self, api: Endpoint, bind_host: str = "127.0.0.1") -> None:
        """`api`: the proxy server's API endpoint; its links listen at the same address,
        on `bind_host` (the runtime network's, harness/runtime/base.py `Network`)."""
        self.api = api
        self.bind_host = bind_host
        self.client = Toxiproxy()
        self.listen: dict[str, Endpoint] = {}

    def _call(self, what: str, action: Callable[[], T]) -> T:
        # toxiproxy-python keeps the server address in class attributes: point them at our
        # server before every call, in case anything else in the process moved them.
        APIConsumer.host, APIConsumer.port = self.api.host, self.api.port
        try:
            return action()
        except (requests.RequestException, NotFound, ProxyExists) as exc:
            raise FaultError(f"fault proxy at {self.api.address}: {what}: {exc}") from exc

    def new_listen(self) -> Endpoint:
        """A free port of the proxy server's, for a link yet to be made."""
        return Endpoint(self.api.host, free_port(), self.api.name)

    def create(self, name: str, upstream: Endpoint, listen: Endpoint | None = None) -> Endpoint:
        """A link from `listen` (a free port when not given: a broker plugin may need to
        know it before the link exists) to `upstream`, which the proxy server dials as any
        component does (its inside view); returns its listen endpoint."""
        listen = listen or self.new_listen()
        bind = f"{self.bind_host}:{listen.port}"
        self._call(f"create {name}", lambda: self.client.create(
            upstream=upstream.inside.address, name=name, listen=bind, enabled=True))
        self.listen[name] = listen
        return listen

    def proxy(self, name: str) -> Proxy:
        proxy = self._call(f"get {name}", lambda: self.client.get_proxy(name))
        if proxy is None:
            raise FaultError(f"no link named {name!r}; known: {', '.join(self.listen)}")
        return proxy

    def add_toxic(self, link: str, **toxic: Any) -> None:
        proxy = self.proxy(link)
        self._call(f"add toxic to {link}", lambda: proxy.add_toxic(**toxic))

    def remove_toxic(self, link: str, toxic_name: str) -> None:
        proxy = self.proxy(link)
        try:
            self._call(f"remove toxic from {link}", lambda: proxy.destroy_toxic(toxic_name))
        except FaultError as exc:
            if not isinstance(exc.__cause__, NotFound):
                raise  # already gone is what heal() wants; anything else is a real failure

    def toxic_names(self, link: str) -> list[str]:
        proxy = self.proxy(link)
        return list(self._call(f"list toxics of {link}", proxy.toxics).keys())

    def set_enabled(self, link: str, enabled: bool) -> None:
        proxy = self.proxy(link)
        self._call(f"{'enable' if enabled else 'disable'} {link}",
                   proxy.enable if enabled else proxy.disable)

    def is_enabled(self, link: str) -> bool:
        return bool(self.proxy(link).enabled)
