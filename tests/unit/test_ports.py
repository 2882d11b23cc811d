"""Listening ports for components: below the ephemeral range, never handed out twice."""

from __future__ import annotations

import socket

from harness.runtime import ports


def test_ports_are_below_the_ephemeral_range_and_unique() -> None:
    floor = ports._ephemeral_floor()
    chosen = [ports.free_port() for _ in range(100)]
    assert len(set(chosen)) == 100
    assert all(10000 <= p < floor for p in chosen)


def test_a_port_in_use_is_never_chosen() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        assert not ports._bindable("127.0.0.1", taken)
        assert taken not in {ports.free_port() for _ in range(50)}
