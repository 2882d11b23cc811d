"""All proxies of one server, by name: create, replace, populate, reset, shut down."""

from __future__ import annotations

import random

from harness.faultproxy.errors import ApiError
from harness.faultproxy.proxy import Proxy
from harness.faultproxy.schema import ProxyInput


class ProxyRegistry:
    """The proxies of one server. Callers serialise access (the API holds a lock)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.proxies: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise ApiError("proxy not found", 404)
        return proxy

    async def create(self, entry: ProxyInput) -> Proxy:
        if entry.name in self.proxies:
            raise ApiError("proxy already exists", 409)
        proxy = Proxy(entry.name, entry.listen, entry.upstream, self.rng)
        if entry.enabled is not False:
            await proxy.start()  # on failure the proxy is not added
        self.proxies[entry.name] = proxy
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        await proxy.stop()
        del self.proxies[name]

    async def populate(self, entries: list[ProxyInput]) -> tuple[list[Proxy], ApiError | None]:
        """Create or replace in order; stop at the first failure, keeping earlier ones."""
        done: list[Proxy] = []
        for entry in entries:
            existing = self.proxies.get(entry.name)
            if existing is not None:
                try:
                    unchanged = await existing.same_addresses(entry.listen, entry.upstream)
                except ApiError:
                    unchanged = False
                if unchanged:
                    # Kept as is, including its toxics, connections and enabled state.
                    done.append(existing)
                    continue
                await existing.stop()
            proxy = Proxy(entry.name, entry.listen, entry.upstream, self.rng)
            if entry.enabled is not False:
                try:
                    await proxy.start()
                except ApiError as exc:
                    return done, exc
            self.proxies[entry.name] = proxy
            done.append(proxy)
        return done, None

    async def reset(self) -> None:
        """Re-enable every proxy and remove all toxics."""
        for proxy in list(self.proxies.values()):
            await proxy.start()
            proxy.toxics.clear()

    async def close(self) -> None:
        for proxy in list(self.proxies.values()):
            await proxy.stop()
            proxy.toxics.clear()
