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
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"


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

    @abstractmethod
    def rabbitmq(self, name: str = "rabbitmq") -> Component: ...

    @abstractmethod
    def service(self, spec: ServiceSpec) -> Component: ...

    @abstractmethod
    def fault_proxy(self, seed: int, name: str = "faultproxy") -> Component:
        """A Toxiproxy-API server; endpoint("main") is its HTTP API."""

    @abstractmethod
    def close(self) -> None: ...
