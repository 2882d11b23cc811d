"""The runtimes' networks: loopback's single view, and the containers runtime's private
network with a fixed address and a name per component (a fake Docker client here; the
real network is tests/integration/test_containers.py's)."""

from __future__ import annotations

import ipaddress
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from harness.errors import SetupError
from harness.links import Links
from harness.runtime.base import LOOPBACK, Endpoint
from harness.runtime.network import FIRST_HOST, BridgeNetwork

SUBNET = ipaddress.IPv4Network("10.77.0.0/24")


class FakeNetwork:
    def __init__(self, name: str, subnet: str) -> None:
        self.name = name
        self.attrs = {"IPAM": {"Config": [{"Subnet": subnet}]}}
        self.removed = False

    def reload(self) -> None:
        pass

    def remove(self) -> None:
        self.removed = True


class FakeNetworks:
    def __init__(self, fail_first: int = 0) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []
        self.fail_first = fail_first

    def create(self, name: str, **options: Any) -> FakeNetwork:
        if "ipam" in options and self.fail_first:
            self.fail_first -= 1
            raise docker.errors.APIError("Pool overlaps with other one on this address space")
        self.made.append((name, options))
        return FakeNetwork(name, str(SUBNET))


class FakeApi:
    def create_endpoint_config(self, **config: Any) -> dict[str, Any]:
        return config


class FakeClient:
    def __init__(self, fail_first: int = 0) -> None:
        self.networks = FakeNetworks(fail_first)
        self.api = FakeApi()


def test_loopback_has_one_view() -> None:
    endpoint = LOOPBACK.endpoint("broker", 5672)
    assert endpoint == Endpoint("127.0.0.1", 5672)
    assert endpoint.inside == endpoint
    assert LOOPBACK.bind_host == "127.0.0.1"


def test_a_component_keeps_its_address_and_is_named_inside() -> None:
    network = BridgeNetwork(FakeClient(), "rch-test", SUBNET)
    broker = network.endpoint("broker", 5672)
    publisher = network.endpoint("publisher", 8080)
    assert broker.host == str(SUBNET[FIRST_HOST]) and publisher.host == str(SUBNET[FIRST_HOST + 1])
    # Asked again (a restart), the same address: clients made earlier still reach it.
    assert network.endpoint("broker", 15672).host == broker.host
    assert broker.inside == Endpoint("broker", 5672)
    assert broker.http_url() == f"http://{broker.host}:5672"
    assert network.bind_host == "0.0.0.0" and network.clients == str(SUBNET)
    assert network.attachment("broker") == {
        "rch-test": {"ipv4_address": broker.host, "aliases": ["broker"]}}


def test_a_full_subnet_is_a_clear_setup_error() -> None:
    network = BridgeNetwork(FakeClient(), "rch-tiny", ipaddress.IPv4Network("10.77.0.0/28"))
    for index in range(14 - FIRST_HOST + 1):
        network.address_of(f"c{index}")
    with pytest.raises(SetupError, match="no address left for one-more"):
        network.address_of("one-more")


def test_the_subnet_is_the_one_docker_chose_and_a_clash_is_retried() -> None:
    client = FakeClient(fail_first=1)
    network = BridgeNetwork.create(client, {"rch.run": "r1"})
    assert network.subnet == SUBNET
    names = [name for name, _ in client.networks.made]
    # Two probes (the first network clashed), then the run's network with that subnet.
    assert len(names) == 3 and names[0].endswith("-probe") and names[1].endswith("-probe")
    assert network.name == names[2]
    assert all(options["labels"] == {"rch.run": "r1"} for _, options in client.networks.made)


def test_links_listen_on_the_bind_host_and_hand_out_the_proxys_name() -> None:
    links = Links(Endpoint("10.77.0.12", 8474, "faultproxy"), "0.0.0.0")
    listen = links.new_listen()
    assert listen.host == "10.77.0.12" and listen.inside.host == "faultproxy"
