"""Conformance through the unmodified toxiproxy-python client (every call it offers)."""

from __future__ import annotations

import pytest
from faultproxy_testkit import PeerServer, connect, listen_port, round_trip
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

pytestmark = pytest.mark.integration


def test_create_returns_the_real_bound_port(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    proxy = toxiproxy.create(upstream=echo_server.address, name="echo")

    assert proxy.name == "echo"
    assert proxy.upstream == echo_server.address
    assert proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:")
    assert listen_port(proxy.listen) != 0
    with connect(proxy.listen) as sock:
        round_trip(sock, b"through the proxy")


def test_proxies_and_get_proxy(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    toxiproxy.create(upstream=echo_server.address, name="a")
    toxiproxy.create(upstream=echo_server.address, name="b", enabled=False)

    proxies = toxiproxy.proxies()

    assert sorted(proxies) == ["a", "b"]
    assert proxies["b"].enabled is False
    assert toxiproxy.get_proxy("a") is not None
    assert toxiproxy.get_proxy("missing") is None


def test_duplicate_create_raises_proxy_exists(toxiproxy: Toxiproxy) -> None:
    toxiproxy.create(upstream="127.0.0.1:1", name="dup")
    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream="127.0.0.1:1", name="dup")
    # The client checks locally first; the server's own 409 maps to the same exception.
    with pytest.raises(ProxyExists):
        APIConsumer.post("/proxies", json={"name": "dup", "upstream": "127.0.0.1:1"})


def test_missing_upstream_raises_invalid_toxic(toxiproxy: Toxiproxy) -> None:
    # toxiproxy-python maps every 400 to InvalidToxic, even for proxy fields.
    with pytest.raises(InvalidToxic):
        toxiproxy.create(upstream="", name="noup")


def test_destroy_and_destroy_all(toxiproxy: Toxiproxy) -> None:
    first = toxiproxy.create(upstream="127.0.0.1:1", name="one")
    toxiproxy.create(upstream="127.0.0.1:1", name="two")

    assert toxiproxy.destroy(first) is True
    with pytest.raises(NotFound):
        first.destroy()
    toxiproxy.destroy_all()
    assert toxiproxy.proxies() == {}


def test_disable_and_enable(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    proxy = toxiproxy.create(upstream=echo_server.address, name="flappy")

    proxy.disable()
    assert proxy.enabled is False
    assert toxiproxy.get_proxy("flappy").enabled is False
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.listen).close()

    proxy.enable()
    assert toxiproxy.get_proxy("flappy").listen == proxy.listen  # same port again
    with connect(proxy.listen) as sock:
        round_trip(sock)


def test_down_context_manager(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    proxy = toxiproxy.create(upstream=echo_server.address, name="down")
    with proxy.down():
        assert toxiproxy.get_proxy("down").enabled is False
    assert toxiproxy.get_proxy("down").enabled is True


def test_add_list_get_and_remove_toxics(toxiproxy: Toxiproxy) -> None:
    proxy = toxiproxy.create(upstream="127.0.0.1:1", name="toxic")

    proxy.add_toxic(type="latency", attributes={"latency": 100, "jitter": 10})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="slow", toxicity=0.5,
                    attributes={"rate": 64})

    toxics = proxy.toxics()
    assert sorted(toxics) == ["latency_downstream", "slow"]
    latency = proxy.get_toxic("latency_downstream")
    assert latency.type == "latency"
    assert latency.stream == "downstream"
    assert latency.toxicity == 1
    assert latency.attributes == {"latency": 100, "jitter": 10}
    slow = toxics["slow"]
    assert (slow.stream, slow.toxicity, slow.attributes) == ("upstream", 0.5, {"rate": 64})
    assert proxy.get_toxic("missing") is None

    assert proxy.destroy_toxic("slow") is True
    assert sorted(proxy.toxics()) == ["latency_downstream"]
    with pytest.raises(NotFound):
        proxy.destroy_toxic("slow")


def test_toxic_errors(toxiproxy: Toxiproxy) -> None:
    proxy = toxiproxy.create(upstream="127.0.0.1:1", name="errs")
    proxy.add_toxic(type="latency", attributes={"latency": 1})

    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency", attributes={"latency": 2})
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", stream="sideways")
    proxy.destroy()
    with pytest.raises(NotFound):
        proxy.add_toxic(type="latency")
    with pytest.raises(NotFound):
        proxy.toxics()


def test_every_toxic_type_is_accepted(toxiproxy: Toxiproxy) -> None:
    proxy = toxiproxy.create(upstream="127.0.0.1:1", name="all")
    for kind in ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                 "limit_data", "noop"):
        proxy.add_toxic(type=kind, stream="upstream")
    assert len(proxy.toxics()) == 8


def test_populate_creates_and_recreates(toxiproxy: Toxiproxy, echo_server: PeerServer) -> None:
    entries = [
        {"name": "p1", "upstream": echo_server.address, "listen": "127.0.0.1:0"},
        {"name": "p2", "upstream": echo_server.address, "listen": "127.0.0.1:0",
         "enabled": False},
    ]
    created = toxiproxy.populate(entries)

    assert sorted(p.name for p in created) == ["p1", "p2"]
    assert toxiproxy.get_proxy("p2").enabled is False
    # "127.0.0.1:0" never equals the stored concrete address, so the client recreates.
    assert len(toxiproxy.populate(entries[:1])) == 1


def test_reset_removes_toxics_and_enables(toxiproxy: Toxiproxy) -> None:
    proxy = toxiproxy.create(upstream="127.0.0.1:1", name="r")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()

    assert toxiproxy.reset() is True

    assert proxy.toxics() == {}
    assert toxiproxy.get_proxy("r").enabled is True


def test_version_and_running(toxiproxy: Toxiproxy) -> None:
    assert toxiproxy.running() is True
    assert toxiproxy.version() == b'{"version": "2.12.0"}\n'
