"""How components run: one interface, whatever runs them (local processes or containers).

Scenarios only ever see `Component` and `Runtime`; which implementation backs them is a
setting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Endpoint:
    """Where a component listens, as the harness dials it (`host`), and, when that differs,
    as another component dials it (`name`: a container's name on its run's private
    network, see harness/runtime/network.py)."""

    host: str
    port: int
    name: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def inside(self) -> Endpoint:
        """This endpoint as another component dials it: what is handed to components."""
        return Endpoint(self.name or self.host, self.port)


class Network:
    """Where a runtime's components listen and how each is reached. This one is the
    processes runtime's: loopback, where the harness and every component dial the same
    address."""

    # What a component binds its listeners to.
    bind_host = "127.0.0.1"
    # Where its peers connect from, for a server that admits clients by address.
    clients = "127.0.0.1/32"

    def endpoint(self, owner: str, port: int) -> Endpoint:
        """The endpoint of port `port` of the component (or group of components sharing
        one address) named `owner`."""
        return Endpoint("127.0.0.1", port)


LOOPBACK = Network()


class Component(ABC):
    """A running part of the system under test (broker node, service, proxy)."""

    name: str

    @abstractmethod
    def start(self) -> None:
        """Start and block until ready; raises ComponentStartError with the log tail."""

    @abstractmethod
    def stop(self, timeout_s: float = 10.0) -> None:
        """Graceful stop, then a kill after timeout_s. Idempotent."""

    @abstractmethod
    def kill(self) -> int | None:
        """SIGKILL (or the runtime's equivalent) without waiting for readiness of anything.

        Returns the exit status seen, when the runtime can tell."""

    @abstractmethod
    def pause(self) -> None:
        """Freeze the component (SIGSTOP / docker pause): its sockets stay open, silent."""

    @abstractmethod
    def resume(self) -> None:
        """Undo pause(). Idempotent."""

    def restart(self) -> None:
        self.stop()
        self.start()

    @abstractmethod
    def is_running(self) -> bool: ...

    def state(self) -> str | None:
        """The component's run state as the kernel writes it ("T": stopped, which is what
        pause() must achieve), read from /proc for a local process (identity "pid N");
        a runtime that freezes otherwise overrides this; None when it cannot be read."""
        kind, _, number = self.identity.partition(" ")
        if kind != "pid" or not number.isdigit():
            return None
        try:
            stat = Path(f"/proc/{number}/stat").read_text()
        except OSError:
            return None
        # "pid (comm) state ...": comm may itself contain spaces and parentheses.
        return stat.rpartition(")")[2].split()[0]

    @abstractmethod
    def logs(self, tail_lines: int = 40) -> str: ...

    @abstractmethod
    def endpoint(self, port_name: str = "main") -> Endpoint: ...

    @property
    @abstractmethod
    def identity(self) -> str:
        """PID or container id of the current incarnation, for reports and leak checks."""


@dataclass(frozen=True)
class ServiceSpec:
    """A reference service to run: which one, and its settings."""

    name: str  # component name, e.g. "publisher" or "consumer"
    module: str  # e.g. "reference_services.publisher"
    args: tuple[str, ...]
    port: int
    health_path: str = "/health"


class Runtime(ABC):
    """Factory and owner of components. close() stops everything it ever started."""

    work_dir: Path
    network: Network = LOOPBACK

    @abstractmethod
    def rabbitmq(self, name: str = "rabbitmq") -> Component: ...

    @abstractmethod
    def service(self, spec: ServiceSpec) -> Component: ...

    @abstractmethod
    def fault_proxy(self, seed: int, name: str = "faultproxy") -> Component:
        """A Toxiproxy-API server; endpoint("main") is its HTTP API."""

    @abstractmethod
    def close(self) -> None: ...
