"""The containers runtime: every component in a Docker container of its own, started through
testcontainers-python, running the same program the processes runtime would run.

Shape (see docs/containers.md):
- Each program (a broker node and its helpers, PostgreSQL, a reference service, the fault
  proxy) runs in the image that carries it: `rch-rabbitmq`, `rch-postgres` or `rch-python`
  (harness/images). A program found in the harness's own virtualenv runs from the image's
  copy of that virtualenv.
- Every run has a private Docker network (harness/runtime/network.py); each container
  joins it under its component's name at a fixed address. Components are handed each
  other's names (an endpoint's inside view); the harness dials the addresses (the outside
  view). A RabbitMQ node's server shares the network of its epmd's container, as the two
  share loopback on the host.
- The scenario's folder is mounted at the same path, so databases, logs and the broker's
  data stay where the harness reads them directly.
- kill = `docker kill`, stop = `docker stop` (each container runs with an init, so a stop
  does not wait out its timeout), pause = `docker pause`. The status a kill reports is
  given in the processes runtime's terms (minus the signal), so kill evidence is the same
  fact on both runtimes.
- Every container carries labels naming the harness, the run and the harness process; all
  are removed on pass, failure, Ctrl-C and at exit, and a later start removes the
  leftovers of a harness process that no longer exists (testcontainers' Ryuk reaper, the
  usual safety net, cannot be pulled where no registry is reachable).
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ComponentStartError, SetupError
from harness.runtime.base import Endpoint
from harness.runtime.network import BridgeNetwork
from harness.runtime.process import ManagedProcess, tail_file
from harness.runtime.processes import EventSink, ProcessRuntime

OWNER_LABEL = "rch.owner"
OWNER = "replication-chaos-harness"
RUN_LABEL = "rch.run"
PID_LABEL = "rch.pid"
COMPONENT_LABEL = "rch.component"
# Where the images keep the harness's virtualenv (harness/images).
IMAGE_VENV = "/opt/rch/venv"
# Docker's parent CPU group under cgroup v1, and the weight given to it (16 host processes'
# worth; see weigh_containers_as_processes).
DOCKER_CPU_SHARES = Path("/sys/fs/cgroup/cpu/docker/cpu.shares")
CONTAINER_CPU_SHARES = 16 * 1024
# Docker reports a container whose main process died of signal N as exit code 128 + N.
SIGNAL_EXIT_BASE = 128

_LIVE: set[ManagedContainer] = set()


def _remove_live() -> None:
    # Last line of defence (an exception inside cleanup): never leave a container behind.
    for container in list(_LIVE):
        container.kill()


atexit.register(_remove_live)


def docker_client() -> Any:
    """A Docker SDK client, or SetupError naming what to do when no engine answers."""
    import docker  # type: ignore[import-untyped]  # here: processes need no Docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SetupError(f"no Docker engine answers ({exc}); start one with `make docker` "
                         "(as root it installs and starts dockerd), or use "
                         "--runtime processes") from exc
    return client


def docker_answers() -> bool:
    try:
        docker_client().close()
    except SetupError:
        return False
    return True


def status_of(exit_code: int) -> int:
    """A container's exit code as the processes runtime reports a process's status:
    negative for death by a signal (137 = SIGKILL becomes -9)."""
    if SIGNAL_EXIT_BASE < exit_code < SIGNAL_EXIT_BASE + signal.NSIG:
        return -(exit_code - SIGNAL_EXIT_BASE)
    return exit_code


@dataclass(frozen=True)
class ImageChoice:
    """Which image runs a program, and the program's path inside it."""

    image: str
    argv: list[str]


def choose_image(argv: list[str], images: Mapping[str, str],
                 host_venv: str = sys.prefix) -> ImageChoice:
    """The image for `argv` (by what it runs) and the argv as that image sees it. Programs
    from the harness's virtualenv (Python, Tansu, moto) run from the image's copy of it;
    RabbitMQ and PostgreSQL from their own images, at the paths Debian installs them at,
    which are the host's too."""
    head = argv[0]
    if head.startswith(host_venv + "/") or head == sys.executable:
        relative = os.path.relpath(head, host_venv)
        return ImageChoice(images["python"], [f"{IMAGE_VENV}/{relative}", *argv[1:]])
    if any(part.startswith("/usr/lib/postgresql/") for part in argv):
        return ImageChoice(images["postgres"], list(argv))
    if head.startswith("/usr/lib/rabbitmq/") or Path(head).name == "epmd":
        return ImageChoice(images["rabbitmq"], list(argv))
    raise SetupError(f"no image carries {head!r}: the containers runtime runs the harness's "
                     "virtualenv, RabbitMQ and PostgreSQL programs only")


def added_env(env: Mapping[str, str], host: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What a component's environment adds to the harness's own: the only part that
    belongs in a container (the host's PATH, virtualenv and the like do not)."""
    return {key: value for key, value in env.items()
            if host.get(key) != value and key not in ("PATH", "VIRTUAL_ENV", "PYTHONHOME")}


def mounts_for(work_dir: Path, cwd: Path, argv: Iterable[str]) -> list[Path]:
    """Host folders the container sees at the same path: the run's folder, the program's
    working folder, and any folder named on its command line (a PostgreSQL cluster kept
    outside the run's folder, for instance)."""
    wanted = [work_dir, cwd, *(Path(arg) for arg in argv
                               if arg.startswith("/") and Path(arg).is_dir()
                               and not arg.startswith(("/usr/", "/opt/", "/bin", "/lib")))]
    mounts: list[Path] = []
    for path in sorted({p.resolve() for p in wanted}, key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(outer) for outer in mounts):
            mounts.append(path)
    return mounts


@dataclass(frozen=True)
class ContainerSpec:
    """A container's environment, labels, mounts and working folder, given as Docker SDK
    arguments (a component's container) or as `docker run` options (a one-shot helper)."""

    env: dict[str, str]
    labels: dict[str, str]
    mounts: list[Path]
    working_dir: Path

    def cli_options(self) -> list[str]:
        return ["-w", str(self.working_dir),
                *(f"--label={key}={value}" for key, value in self.labels.items()),
                *(f"--env={key}={value}" for key, value in self.env.items()),
                *(f"--volume={path}:{path}:rw" for path in self.mounts)]


class ManagedContainer(ManagedProcess):
    """A ManagedProcess whose program runs in a container: same readiness probe, same log
    file (the program's output is written into the mounted folder), Docker's verbs for the
    lifecycle. Each start makes a new container; a stopped or killed one is removed at
    once, its exit status kept."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path,
                 log_path: Path, ready: Callable[[], bool], endpoints: Mapping[str, Endpoint],
                 ready_timeout_s: float = 30.0,
                 on_event: Callable[[str, Mapping[str, object]], None] | None = None, *,
                 owner: str | None = None, beside: ManagedProcess | None = None,
                 images: Mapping[str, str], labels: Mapping[str, str], work_dir: Path,
                 network: BridgeNetwork) -> None:
        super().__init__(name, argv, env, cwd, log_path, ready, endpoints,
                         # An image's first start pays for the container's creation too.
                         ready_timeout_s + 15.0, on_event, owner=owner, beside=beside)
        self.network = network
        self.images = dict(images)
        self.labels = {**labels, COMPONENT_LABEL: name}
        self.work_dir = work_dir
        self._container: Any = None  # testcontainers' DockerContainer
        self._exit: int | None = None
        self._host_pid: int | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        if self.is_running():
            return
        # Ryuk cannot be pulled here; the labels and this module's cleanup replace it.
        testcontainers_config.ryuk_disabled = True
        self.cwd.mkdir(parents=True, exist_ok=True)
        choice = choose_image(self.argv, self.images)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {self.name} at {time.strftime('%H:%M:%S')} "
                      f"in {choice.image} ===\n".encode())
        spec = self._spec(choice, self.labels, {"RCH_LOG": str(self.log_path)})
        container = DockerContainer(choice.image)
        # The program's output goes to the same log file as a process's would.
        container.with_command(["/bin/sh", "-c", 'exec "$@" >>"$RCH_LOG" 2>&1', "sh",
                                *choice.argv])
        for key, value in spec.env.items():
            container.with_env(key, value)
        for path in spec.mounts:
            container.with_volume_mapping(str(path), str(path), "rw")
        container.with_kwargs(init=True, labels=spec.labels, working_dir=str(spec.working_dir),
                              **self._network_options())
        try:
            container.start()
        except Exception as exc:  # the Docker SDK raises several unrelated types
            raise ComponentStartError(self.name, f"docker could not start {choice.image}: "
                                                 f"{exc}", self.logs()) from exc
        self._container = container
        # Docker makes its parent CPU group with the first container of an engine.
        weigh_containers_as_processes()
        self._exit = None
        self._paused = False
        _LIVE.add(self)
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        self._host_pid = int(wrapped.attrs["State"]["Pid"]) or None
        self.incarnations.append(self._host_pid or 0)
        self._emit("start", {"container": wrapped.short_id, "pid": self._host_pid,
                             **self._where(wrapped.attrs)})
        self._await_ready()

    def _spec(self, choice: ImageChoice, labels: Mapping[str, str],
              env: Mapping[str, str] | None = None) -> ContainerSpec:
        """What every container of this component gets, whichever way it is started: the
        environment it adds to the harness's (plus `env`), `labels`, the folders it
        sees at their host paths, and its working folder."""
        return ContainerSpec({**added_env(self.env), **(env or {})}, dict(labels),
                             mounts_for(self.work_dir, self.cwd, choice.argv), self.cwd)

    def _network_options(self) -> dict[str, Any]:
        """Docker's options that put the container on the run's network: at its owner's
        fixed address, or in the network namespace of the component it runs beside."""
        if isinstance(self.beside, ManagedContainer):
            if self.beside._container is None:
                raise ComponentStartError(self.name, f"{self.beside.name}, whose network it "
                                                     "shares, is not running", self.logs())
            peer = self.beside._container.get_wrapped_container().id
            return {"network_mode": f"container:{peer}"}
        return {"network": self.network.name,
                "networking_config": self.network.attachment(self.owner)}

    def _where(self, attrs: Mapping[str, Any]) -> dict[str, str]:
        """Where Docker put it, for the run's history: its network, name and address
        there, or whose network it shares."""
        if isinstance(self.beside, ManagedContainer):
            return {"network_of": self.beside.name}
        joined = attrs["NetworkSettings"]["Networks"].get(self.network.name, {})
        return {"network": self.network.name, "name": self.owner,
                "address": joined.get("IPAddress", "")}

    def _state(self) -> dict[str, Any]:
        if self._container is None:
            return {}
        wrapped = self._container.get_wrapped_container()
        try:
            wrapped.reload()
        except Exception:  # removed behind our back: it is not running
            return {}
        state: dict[str, Any] = wrapped.attrs["State"]
        return state

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._container is None:
            return
        wrapped = self._container.get_wrapped_container()
        if self.is_running():
            self.resume()  # a paused container cannot act on SIGTERM
            # It may have exited meanwhile; the removal below stands either way.
            with contextlib.suppress(Exception):
                wrapped.stop(timeout=max(1, math.ceil(timeout_s)))
        self._finish("stop")

    def kill(self) -> int | None:
        if self._container is None:
            return self._exit
        if self.is_running():
            self.resume()
            with contextlib.suppress(Exception):  # it may have exited by itself meanwhile
                self._container.get_wrapped_container().kill()
        self._wait_exited(10.0)
        status = self.returncode
        self._finish("kill")
        return status

    def _wait_exited(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.02)

    def _finish(self, how: str) -> None:
        """Keep the exit status, then remove the container (its output is in the log)."""
        state = self._state()
        if state and not state.get("Running", False):
            self._exit = status_of(int(state.get("ExitCode", 0)))
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):  # already gone
                container.stop()  # testcontainers' stop() is a forced removal
        _LIVE.discard(self)
        self._paused = False
        self._emit(how, {"pid": self._host_pid, "returncode": self._exit})

    def pause(self) -> None:
        if self.is_running() and not self._paused:
            self._container.get_wrapped_container().pause()
            self._paused = True
            self._emit("pause", {"container": self.identity})

    def resume(self) -> None:
        if self._paused and self._container is not None:
            self._container.get_wrapped_container().unpause()
            self._paused = False
            self._emit("resume", {"container": self.identity})

    def send_signal(self, sig: signal.Signals) -> None:
        if self.is_running():
            self._container.get_wrapped_container().kill(signal=int(sig))

    def run_helper(self, argv: list[str], timeout_s: float,
                   stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """In this component's container while it runs (`docker exec`, which keeps the
        container's environment), else in a one-shot container of the image that carries
        the program, with this component's environment, folders and labels: the host
        needs neither RabbitMQ's nor PostgreSQL's programs. Docker's CLI, for its
        separate output streams and a timeout the SDK lacks."""
        helper = None
        if self.is_running():
            command = ["docker", "exec", "--interactive", "-w", str(self.cwd),
                       self._container.get_wrapped_container().id, *argv]
        else:
            choice = choose_image(argv, self.images)
            helper = f"rch-helper-{uuid.uuid4().hex[:12]}"
            spec = self._spec(choice, {**self.labels, COMPONENT_LABEL: f"{self.name}-helper"})
            # A helper (initdb) is a local program: it needs no network.
            command = ["docker", "run", "--rm", "--init", "--interactive", "--network", "none",
                       "--name", helper, *spec.cli_options(), choice.image, *choice.argv]
        try:
            return subprocess.run(command, input=stdin, capture_output=True, text=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            if helper is not None:  # the CLI is gone; the container would run on
                subprocess.run(["docker", "rm", "--force", helper], capture_output=True,
                               timeout=30, check=False)
            raise

    # -- observation --------------------------------------------------------------------
    def is_running(self) -> bool:
        return bool(self._state().get("Running", False))

    def state(self) -> str | None:
        """The engine's word: "T" while Docker reports the container paused (its freezer
        holds every process), "R" while it runs, None once it is gone."""
        state = self._state()
        if not state.get("Running", False):
            return None
        return "T" if state.get("Paused", False) else "R"

    @property
    def returncode(self) -> int | None:
        state = self._state()
        if not state:
            return self._exit
        if state.get("Running", False):
            return None
        return status_of(int(state.get("ExitCode", 0)))

    @property
    def identity(self) -> str:
        if self._container is None:
            return "not started" if not self.incarnations else "removed"
        return f"container {self._container.get_wrapped_container().short_id}"

    @property
    def pid(self) -> int | None:
        return self._host_pid if self._container is not None else None

    def logs(self, tail_lines: int = 40) -> str:
        return tail_file(self.log_path, tail_lines)


def weigh_containers_as_processes(shares_file: Path = DOCKER_CPU_SHARES) -> int | None:
    """Give Docker's parent CPU group the weight of several host processes; returns the
    weight set, or None when there is nothing to change or no right to change it.

    Under cgroup v1 every host process weighs 1024 on its own, while all containers
    together sit in one group that weighs 1024 too: on a busy machine the whole system
    under test would get the CPU of a single host thread, and the harness's own threads
    (the workload driver, the tap) would starve it, measuring the scheduler rather than
    the services."""
    try:
        if int(shares_file.read_text()) >= CONTAINER_CPU_SHARES:
            return None
        shares_file.write_text(f"{CONTAINER_CPU_SHARES}\n")
    except (OSError, ValueError):
        return None  # cgroup v2, another layout, or not root: left as it is
    return CONTAINER_CPU_SHARES


def harness_labels(run_id: str) -> dict[str, str]:
    return {OWNER_LABEL: OWNER, RUN_LABEL: run_id, PID_LABEL: str(os.getpid())}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(client: Any, run_id: str | None = None) -> list[str]:
    """Remove the harness's containers and networks that nobody owns any more: those of
    `run_id` when given, else those whose harness process no longer exists (an
    interrupted earlier run). Returns the names removed."""
    removed: list[str] = []
    for container in client.containers.list(all=True, filters={"label": f"{OWNER_LABEL}={OWNER}"}):
        labels = container.labels
        if run_id is not None:
            orphan = labels.get(RUN_LABEL) == run_id
        else:
            pid = labels.get(PID_LABEL, "")
            orphan = not (pid.isdigit() and _pid_alive(int(pid)))
        if orphan:
            container.remove(force=True)
            removed.append(container.name)
    for network in client.networks.list(filters={"label": f"{OWNER_LABEL}={OWNER}"}):
        labels = network.attrs.get("Labels") or {}
        pid = labels.get(PID_LABEL, "")
        if (labels.get(RUN_LABEL) == run_id if run_id is not None
                else not (pid.isdigit() and _pid_alive(int(pid)))):
            network.remove()
            removed.append(network.name)
    return removed


class ContainerRuntime(ProcessRuntime):
    """The processes runtime's components, each run in a container (see the module's
    docstring). Needs a Docker engine and the harness's images (harness/images)."""

    name = "containers"
    programs_on_host = False
    network: BridgeNetwork

    def __init__(self, work_dir: Path, images: Mapping[str, str], run_id: str,
                 on_event: EventSink | None = None,
                 network: BridgeNetwork | None = None) -> None:
        """`network`: another runtime's network to join (a kept broker's, which this
        run's components must reach), else one of its own, removed when it closes."""
        super().__init__(work_dir, on_event)
        self.images = dict(images)
        self.run_id = run_id
        self.labels = harness_labels(run_id)
        self._client = docker_client()
        leftovers = remove_leftovers(self._client)
        if leftovers and on_event is not None:
            on_event("leftovers_removed", {"component": "runtime", "names": leftovers})
        self.network = network or BridgeNetwork.create(self._client, self.labels)
        if on_event is not None:
            try:
                on_event("network", {"component": "runtime", "name": self.network.name,
                                     "subnet": str(self.network.subnet)})
            except BaseException:
                remove_leftovers(self._client, run_id)  # nobody would close this runtime
                raise
        weight = weigh_containers_as_processes()
        if weight is not None and on_event is not None:
            on_event("cpu_weight", {"component": "runtime", "docker_cpu_shares": weight})

    def launch(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path,
               log_path: Path, ready: Callable[[], bool], endpoints: Mapping[str, Endpoint],
               ready_timeout_s: float = 30.0,
               on_event: Callable[[str, Mapping[str, object]], None] | None = None, *,
               owner: str | None = None, beside: ManagedProcess | None = None,
               ) -> ManagedProcess:
        return ManagedContainer(name, argv, env, cwd, log_path, ready, endpoints,
                                ready_timeout_s, on_event, owner=owner, beside=beside,
                                images=self.images, labels=self.labels,
                                work_dir=self.work_dir, network=self.network)

    def close(self) -> None:
        try:
            super().close()
        finally:
            # Whatever a failed stop left, and the run's network: by the run's label (a
            # network joined from another runtime carries that one's).
            remove_leftovers(self._client, self.run_id)
            self._client.close()
