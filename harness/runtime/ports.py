"""Free loopback ports for components the harness starts.

Components need fixed ports (a restart must come back where its peers expect it), so a
port is chosen, released, and bound by the component seconds later. Ports from the
kernel's ephemeral range would race with every outgoing connection on the machine, which
takes its local port from that range; so ports are drawn below it, and never twice.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_FLOOR = 10000
_issued: set[int] = set()
_lock = threading.Lock()
# Port choice must not consume the scenario's seeded randomness.
_rng = random.SystemRandom()


def _ephemeral_floor() -> int:
    try:
        low = int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, _FLOOR + 1000)


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    ceiling = _ephemeral_floor()
    with _lock:
        for _ in range(200):
            port = _rng.randrange(_FLOOR, ceiling)
            if port not in _issued and _bindable(host, port):
                _issued.add(port)
                return port
    # Fall back to the kernel's choice rather than fail outright.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
