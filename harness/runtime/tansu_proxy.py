"""A `tansu proxy`: a Kafka-protocol proxy in front of one broker that advertises an
address of its own choosing, run as a local process on its own port.

Why it exists: a Kafka client bootstraps anywhere, then connects to the address the broker
advertises in its metadata; a Tansu broker advertises one address, so every client would
bypass a per-client fault-proxy link. A `tansu proxy` per link rewrites the metadata to
advertise that link's listen address instead, so each client's whole conversation runs
service -> its link -> this proxy -> the broker, and the link's faults reach that client
only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from harness.runtime.base import LOOPBACK, Endpoint, Network
from harness.runtime.ports import free_port
from harness.runtime.process import Launcher, ManagedProcess, ProcessBacked
from harness.runtime.tansu_node import find_tansu, kafka_ready, tansu_env


def proxy_argv(binary: Path, bind: str, advertised: Endpoint,
               origin: Endpoint) -> list[str]:
    return [str(binary), "proxy",
            "--listener-url", f"tcp://{bind}",
            "--advertised-listener-url", f"tcp://{advertised.address}",
            "--origin-url", f"tcp://{origin.address}"]


class TansuProxy(ProcessBacked):
    def __init__(self, name: str, work_dir: Path, base_env: Mapping[str, str],
                 origin: Endpoint, advertised: Endpoint,
                 on_event: Callable[[str, Mapping[str, object]], None] | None = None,
                 launch: Launcher = ManagedProcess, network: Network = LOOPBACK) -> None:
        """Listens on a port of its own, forwards to the broker at `origin`, and tells
        clients to connect to `advertised` (e.g. a fault-proxy link whose upstream is this
        proxy's listener: create the link before starting the proxy). Both as the harness
        dials them: on the containers runtime's network those addresses reach the same
        place from the host and from a container, and an advertised address must, since
        the harness's probe and the services read the same metadata."""
        self.name = name
        self.origin = origin
        self.advertised = advertised
        self.listener = network.endpoint(name, free_port())
        directory = work_dir / name
        self.server = launch(
            name, proxy_argv(find_tansu(), f"{network.bind_host}:{self.listener.port}",
                             advertised, origin),
            tansu_env(base_env), directory, work_dir / f"{name}.log",
            # A metadata request answered at the advertised address, the way a client
            # goes: the proxy listens, reaches the broker and is reachable where it says
            # (an open port proves none of it). A client that cannot reach the advertised
            # address gets no answer, so whatever forwards to it must exist first.
            ready=lambda: kafka_ready(self.advertised.address),
            endpoints={"main": self.listener}, ready_timeout_s=15.0, on_event=on_event)

