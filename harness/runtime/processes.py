"""The processes runtime: every component is a local process group on loopback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from harness.runtime.base import Component, Endpoint, Runtime, ServiceSpec
from harness.runtime.ports import free_port
from harness.runtime.postgres_node import PostgresNode
from harness.runtime.process import Launcher, ManagedProcess
from harness.runtime.rabbitmq_node import RabbitMQNode, process_env

if TYPE_CHECKING:
    from harness.runtime.tansu_node import StorageKind, TansuNode
    from harness.runtime.tansu_proxy import TansuProxy

EventSink = Callable[[str, Mapping[str, object]], None]


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


class ProcessRuntime(Runtime):
    name = "processes"
    # How each program is run; the containers runtime runs the same ones in containers.
    launch: Launcher = ManagedProcess
    # Whether those programs are the host's own (found and checked on the host) or an
    # image's (at the paths the image's recipe gives them).
    programs_on_host = True

    def __init__(self, work_dir: Path, on_event: EventSink | None = None) -> None:
        self.work_dir = work_dir.resolve()  # children run elsewhere: relative would break
        self.on_event = on_event
        self.env = process_env(self.work_dir)
        self._nodes: list[RabbitMQNode | TansuNode] = []
        self._services: list[ManagedProcess] = []
        self._proxies: list[ManagedProcess] = []

    def rabbitmq(self, name: str = "rabbitmq") -> RabbitMQNode:
        node = RabbitMQNode(name, self.work_dir, self.env, self.on_event, self.launch,
                            self.programs_on_host, self.network)
        self._nodes.append(node)
        return node

    def kafka(self, name: str = "kafka", storage: StorageKind = "memory",
              advertised: Endpoint | None = None) -> TansuNode:
        """A Tansu broker; with storage "s3" it brings its own S3 server (see
        harness/runtime/tansu_node.py). `advertised` defaults to its own listener."""
        # Imported here: the RabbitMQ path needs none of the Kafka-side packages.
        from harness.runtime.tansu_node import TansuNode

        node = TansuNode(name, self.work_dir, self.env, storage, advertised, self.on_event,
                         self.launch, self.network)
        self._nodes.append(node)
        return node

    def tansu_proxy(self, name: str, origin: Endpoint, advertised: Endpoint) -> TansuProxy:
        """A `tansu proxy` forwarding to the broker at `origin` and advertising
        `advertised` (see harness/runtime/tansu_proxy.py); not yet started."""
        from harness.runtime.tansu_proxy import TansuProxy

        proxy = TansuProxy(name, self.work_dir, self.env, origin, advertised, self.on_event,
                           self.launch, self.network)
        # With the fault proxies: stopped after the services, before the broker.
        self._proxies.append(proxy.server)
        return proxy

    def postgres(self, name: str = "postgres") -> PostgresNode:
        """A private PostgreSQL cluster (harness/runtime/postgres_node.py), not started. Its
        caller closes it (the system under test does, before the services stop)."""
        return PostgresNode(name, self.work_dir, self.env, self.on_event, self.launch,
                            self.programs_on_host, self.network)

    def service(self, spec: ServiceSpec) -> Component:
        endpoint = self.network.endpoint(spec.name, spec.port)
        argv = [sys.executable, "-m", spec.module, "--host", self.network.bind_host,
                "--port", str(spec.port), *spec.args]
        proc = self.launch(
            spec.name, argv, self.env, self.work_dir / spec.name,
            self.work_dir / f"{spec.name}.log",
            ready=lambda: http_ok(endpoint.http_url() + spec.health_path),
            endpoints={"main": endpoint}, ready_timeout_s=30.0, on_event=self.on_event)
        self._services.append(proc)
        return proc

    def fault_proxy(self, seed: int, name: str = "faultproxy") -> Component:
        api = self.network.endpoint(name, free_port())
        argv = [sys.executable, "-m", "harness.faultproxy", "--host", self.network.bind_host,
                "--port", str(api.port), "--seed", str(seed)]
        proc = self.launch(
            name, argv, self.env, self.work_dir / name, self.work_dir / f"{name}.log",
            ready=lambda: http_ok(api.http_url() + "/version"),
            endpoints={"main": api}, ready_timeout_s=15.0, on_event=self.on_event)
        # Stopped last, after the services whose connections run through it.
        self._proxies.append(proc)
        return proc

    def close(self) -> None:
        # Services first (they hold broker connections), then brokers.
        for service in reversed(self._services):
            service.stop(timeout_s=5)
        for proxy in self._proxies:
            proxy.stop(timeout_s=5)
        for node in reversed(self._nodes):
            node.close()
