"""A private RabbitMQ node run as local processes: its own epmd, ports, data and logs.

Starting `rabbitmq-server` directly (not Debian's wrapper, which switches user) with every
path and port set per node lets several nodes, and restarts of one node, coexist without
touching a system-wide broker. Its data survives a stop/kill (durable queues are kept),
as a real broker's disk would.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from subprocess import CompletedProcess

import pika
import pika.exceptions

from harness.errors import SetupError
from harness.images import recipes
from harness.runtime.base import LOOPBACK, Endpoint, Network
from harness.runtime.ports import free_port
from harness.runtime.process import Launcher, ManagedProcess, ProcessBacked

# Debian's paths, on the host as in the RabbitMQ image (whose recipe checks them).
RABBITMQ_SERVER = Path(recipes.RABBITMQ_SERVER)
RABBITMQCTL = Path(recipes.RABBITMQCTL)
EPMD_CANDIDATES = (Path(recipes.EPMD), Path("/usr/lib/erlang/bin/epmd"))


def find_rabbitmq(on_host: bool = True) -> tuple[Path, Path]:
    """rabbitmq-server and epmd. Not `on_host`: the paths Debian's packages give them in
    the RabbitMQ image (its recipe checks them when it is built)."""
    if not on_host:
        return RABBITMQ_SERVER, Path(recipes.EPMD)
    if not RABBITMQ_SERVER.exists():
        raise SetupError(
            f"RabbitMQ is not installed ({RABBITMQ_SERVER} is missing). "
            "Install it with `sudo apt-get install -y rabbitmq-server`, or run "
            "`scripts/bootstrap`, which does that when run as root."
        )
    epmd = next((p for p in EPMD_CANDIDATES if p.exists()), None)
    if epmd is None:
        raise SetupError("epmd (Erlang port mapper) not found; reinstall erlang-base")
    return RABBITMQ_SERVER, epmd


def amqp_ready(endpoint: Endpoint) -> bool:
    # The port accepts TCP before the broker can serve AMQP: only a real handshake counts.
    try:
        params = pika.ConnectionParameters(endpoint.host, endpoint.port, socket_timeout=1,
                                           connection_attempts=1, blocked_connection_timeout=1)
        pika.BlockingConnection(params).close()
        return True
    except (pika.exceptions.AMQPError, OSError):
        return False


class RabbitMQNode(ProcessBacked):
    stop_timeout_s = 15.0

    def __init__(self, name: str, work_dir: Path, base_env: Mapping[str, str],
                 on_event: Callable[[str, Mapping[str, object]], None] | None = None,
                 launch: Launcher = ManagedProcess, on_host: bool = True,
                 network: Network = LOOPBACK) -> None:
        server, epmd = find_rabbitmq(on_host)
        self.name = name
        self.dir = work_dir / name
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.amqp = network.endpoint(name, self.amqp_port)
        (self.dir / "home").mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {network.bind_host}:{self.amqp_port}\n"
            # Containers reach the broker through a proxy, not loopback, so guest must be
            # allowed from anywhere; the node listens on loopback or on the run's private
            # network only.
            "loopback_users = none\n"
            "log.console = true\n"
            "log.console.level = warning\n"
            "log.file = false\n"
        )
        (self.dir / "enabled_plugins").write_text("[].\n")
        env = {
            **base_env,
            "HOME": str(self.dir / "home"),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_NODENAME": f"rch{self.amqp_port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": network.bind_host,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",
        }
        # Our own epmd, in the foreground, so it is a child we can stop (a daemonised one,
        # as Erlang starts by default, would outlive the run). It holds the node's address;
        # the server finds it on the loopback they share, and survives a server restart.
        self.epmd = launch(
            f"{name}-epmd", [str(epmd), "-port", str(self.epmd_port)], env, self.dir,
            self.dir / "epmd.log", ready=lambda: True, endpoints={}, on_event=on_event,
            owner=name)
        self.server = launch(
            name, [str(server)], env, self.dir, self.dir / "rabbitmq.log",
            ready=lambda: amqp_ready(self.amqp), endpoints={"main": self.amqp},
            ready_timeout_s=60.0, on_event=on_event, owner=name, beside=self.epmd)

    @property
    def nodename(self) -> str:
        """The Erlang node name `rabbitmqctl -n` addresses."""
        return self.server.env["RABBITMQ_NODENAME"]

    def rabbitmqctl(self, args: Sequence[str], timeout_s: float,
                    stdin: str | None = None) -> CompletedProcess[str]:
        """`rabbitmqctl -n <this node> -q <args>`, run where the node runs (in its
        container, on the containers runtime) with the node's environment: its own epmd
        and, in HOME, its Erlang cookie."""
        return self.server.run_helper(
            [str(RABBITMQCTL), "-n", self.nodename, "-q", *args], timeout_s, stdin)

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@{self.amqp.address}/%2F"

    def start(self) -> None:
        self.epmd.start()
        self.server.start()


    def close(self) -> None:
        # A clean stop, not a kill: Erlang's helper programs (erl_child_setup,
        # inet_gethost) sit in a process group of their own and outlive a killed node.
        self.server.stop()
        self.epmd.stop()


def process_env(run_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["RCH_RUN_DIR"] = str(run_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env
