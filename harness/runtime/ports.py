"""Free loopback ports for components the harness starts."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    # Bind to port 0 and release: racy in theory, fine in practice on a test machine, and
    # components need fixed ports so that a restart comes back where its peers expect it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_accepts(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False
