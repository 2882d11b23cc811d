"""Fixtures for the fault proxy tests: an in-process server, clients, loopback peers."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from faultproxy_testkit import IO_TIMEOUT, PeerServer, echo
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer

from harness.faultproxy import FaultProxyServer


@pytest.fixture
def server() -> Iterator[FaultProxyServer]:
    with FaultProxyServer(seed=0) as running:
        yield running


@pytest.fixture
def toxiproxy(server: FaultProxyServer) -> Iterator[Toxiproxy]:
    """The unmodified toxiproxy-python client, pointed at the in-process server."""
    saved = (APIConsumer.host, APIConsumer.port)
    client = Toxiproxy()
    client.update_api_consumer(server.host, server.port)
    try:
        yield client
    finally:
        APIConsumer.host, APIConsumer.port = saved


@pytest.fixture
def api(server: FaultProxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, timeout=IO_TIMEOUT) as client:
        yield client


@pytest.fixture
def echo_server() -> Iterator[PeerServer]:
    peer = PeerServer(echo)
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture
def peer_factory() -> Iterator[Callable[[Callable[[socket.socket], None]], PeerServer]]:
    peers: list[PeerServer] = []

    def make(behaviour: Callable[[socket.socket], None]) -> PeerServer:
        peer = PeerServer(behaviour)
        peers.append(peer)
        return peer

    try:
        yield make
    finally:
        for peer in peers:
            peer.close()
