"""A run's private Docker network: every container of the containers runtime joins it under
its component's name, at a fixed address.

Two views of each endpoint (harness/runtime/base.py `Endpoint`):
- inside, what another container dials: the component's name, which Docker's DNS
  resolves on this network only;
- outside, what the harness dials from the host: the container's address on the network's
  bridge, which the host reaches directly (no published ports, so the fault proxy can
  open listeners after its container started).

A component keeps its address across restarts (a kill removes its container; the next
start makes a new one at the same address), so clients the harness made at the start,
and links whose upstream is the component, keep working. Docker assigns a fixed address
only on a network whose subnet was given at its creation, so the subnet is one Docker
chose itself a moment earlier for a probe network: one that collides with nothing Docker
knows of.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping
from typing import Any

from harness.errors import SetupError
from harness.runtime.base import Endpoint, Network

# Addresses below this one in the subnet are left to Docker (gateway and its own picks).
FIRST_HOST = 10
CREATE_ATTEMPTS = 3


class BridgeNetwork(Network):
    bind_host = "0.0.0.0"

    def __init__(self, client: Any, name: str, subnet: ipaddress.IPv4Network) -> None:
        self.client = client
        self.name = name
        self.subnet = subnet
        self.clients = str(subnet)
        self._hosts = subnet.hosts()
        for _ in range(FIRST_HOST - 1):
            next(self._hosts)
        self._addresses: dict[str, str] = {}

    @classmethod
    def create(cls, client: Any, labels: Mapping[str, str]) -> BridgeNetwork:
        """A new network labelled `labels`; SetupError when Docker cannot make one."""
        import docker  # type: ignore[import-untyped]  # here: processes need no Docker

        problem: Exception | None = None
        for _ in range(CREATE_ATTEMPTS):
            name = f"rch-{uuid.uuid4().hex[:12]}"
            try:
                probe = client.networks.create(f"{name}-probe", driver="bridge",
                                               labels=dict(labels))
                try:
                    probe.reload()
                    subnet = ipaddress.ip_network(probe.attrs["IPAM"]["Config"][0]["Subnet"])
                finally:
                    probe.remove()
                pool = docker.types.IPAMPool(subnet=str(subnet))
                client.networks.create(name, driver="bridge", labels=dict(labels),
                                       ipam=docker.types.IPAMConfig(pool_configs=[pool]))
            except docker.errors.APIError as exc:
                # Another run may have taken the same subnet in between: try again.
                problem = exc
                continue
            if not isinstance(subnet, ipaddress.IPv4Network):
                raise SetupError(f"Docker gave the network {name} an IPv6 subnet ({subnet})")
            return cls(client, name, subnet)
        raise SetupError(f"Docker could not make a private network for the run: {problem}")

    def address_of(self, owner: str) -> str:
        """The fixed address of `owner` on this network, given the first time it is asked."""
        if owner not in self._addresses:
            try:
                self._addresses[owner] = str(next(self._hosts))
            except StopIteration:
                raise SetupError(f"the network {self.name} ({self.subnet}) has no address "
                                 f"left for {owner}") from None
        return self._addresses[owner]

    def endpoint(self, owner: str, port: int) -> Endpoint:
        return Endpoint(self.address_of(owner), port, owner)

    def attachment(self, owner: str) -> dict[str, Any]:
        """The Docker SDK's `networking_config` that joins a container to this network
        as `owner`, at its fixed address."""
        return {self.name: self.client.api.create_endpoint_config(
            ipv4_address=self.address_of(owner), aliases=[owner])}
