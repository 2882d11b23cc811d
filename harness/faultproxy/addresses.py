"""``host:port`` parsing, listen-address resolution and binding, with Go's conventions.

Toxiproxy reports the bound address the way Go prints it (``127.0.0.1:26379``,
``[::]:26379`` for a wildcard listener, which Go makes dual-stack) and its errors carry Go's
wording; clients show those strings to users, so they are reproduced here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

from harness.faultproxy.errors import ApiError

_WILDCARDS = ("", "0.0.0.0", "::")


class AddressError(ValueError):
    """A ``host:port`` string is malformed; the message is Go's ``net`` error text."""


def split_host_port(address: str) -> tuple[str, str]:
    """Split ``host:port`` as Go's ``net.SplitHostPort`` does (brackets for IPv6)."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise AddressError(f"address {address}: missing ']' in address")
        host, rest = address[1:end], address[end + 1 :]
        if not rest.startswith(":"):
            problem = "missing port in address" if not rest else "too many colons in address"
            raise AddressError(f"address {address}: {problem}")
        return host, rest[1:]
    if ":" not in address:
        raise AddressError(f"address {address}: missing port in address")
    host, _, port = address.rpartition(":")
    if ":" in host:
        raise AddressError(f"address {address}: too many colons in address")
    return host, port


def parse_port(address: str, port_text: str) -> int:
    if port_text == "":
        return 0
    if not port_text.isdigit():
        raise AddressError(f"lookup tcp/{port_text}: unknown port")
    port = int(port_text)
    if port > 65535:
        raise AddressError(f"address {address}: invalid port")
    return port


def format_address(host: str, port: int) -> str:
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


@dataclass(frozen=True)
class ListenAddress:
    """A resolved listen address: where to bind and how Go would print it."""

    family: socket.AddressFamily
    host: str
    port: int
    dual_stack: bool

    def display(self, port: int | None = None) -> str:
        shown = "::" if self.dual_stack else self.host
        return format_address(shown, self.port if port is None else port)


async def resolve_listen(listen: str) -> ListenAddress:
    """Resolve a proxy's ``listen`` string; raise ApiError(500) with Go's wording."""
    if listen == "":
        host, port_text = "", ""
    else:
        try:
            host, port_text = split_host_port(listen)
        except AddressError as exc:
            raise ApiError(f"listen tcp: {exc}", 500) from None
    try:
        port = parse_port(listen, port_text)
    except AddressError as exc:
        raise ApiError(f"listen tcp: {exc}", 500) from None
    if host in _WILDCARDS:
        if socket.has_dualstack_ipv6():
            return ListenAddress(socket.AF_INET6, "::", port, dual_stack=True)
        return ListenAddress(socket.AF_INET, "0.0.0.0", port, dual_stack=False)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        return ListenAddress(family, str(ip), port, dual_stack=False)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise ApiError(f"listen tcp: lookup {host}: no such host", 500) from None
    # Go resolves names for a "tcp" listener preferring IPv4 ("localhost" -> 127.0.0.1).
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _type, _proto, _name, sockaddr = infos[0]
    return ListenAddress(socket.AddressFamily(family), str(sockaddr[0]), port, dual_stack=False)


async def normalised_listen(listen: str) -> str:
    """The string Go's ``ResolveTCPAddr(listen).String()`` gives, for change detection."""
    if listen == "":
        return ":0"
    address = await resolve_listen(listen)
    host, _port = split_host_port(listen)
    if host == "":
        return f":{address.port}"
    if host in _WILDCARDS:
        return format_address(host, address.port)
    return format_address(address.host, address.port)


def bind_listener(address: ListenAddress) -> socket.socket:
    """Bind a listening socket; raise ApiError(500) with Go's ``listen tcp`` error text."""
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        # Go sets SO_REUSEADDR too; without it a disabled-then-enabled proxy could not
        # rebind its port while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if address.dual_stack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address.host, address.port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        where = address.display() if not address.dual_stack else f":{address.port}"
        raise ApiError(f"listen tcp {where}: bind: {reason}", 500) from None
    return sock


def bound_display(sock: socket.socket, address: ListenAddress) -> str:
    """The ``listen`` string to report once bound: the real port replaces 0."""
    port = int(sock.getsockname()[1])
    return address.display(port)


def split_upstream(upstream: str) -> tuple[str, int]:
    """Parse the upstream ``host:port`` for dialling; raise AddressError if malformed."""
    host, port_text = split_host_port(upstream)
    return host, parse_port(upstream, port_text)
