"""A component run as a local process group.

Each component runs in its own session (process group), so stop/kill/pause reach the
helpers it forks (RabbitMQ's beam, for instance) by the group id we created, never by name.
Every process also carries RCH_RUN_DIR in its environment, so a test can prove that nothing
the run started outlives it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from harness.errors import ComponentStartError
from harness.runtime.base import Component, Endpoint
from harness.waiting import wait_until

_LIVE: set[ManagedProcess] = set()


def _reap_leftovers() -> None:
    # Last line of defence (e.g. an exception inside cleanup): never leave a group behind.
    for proc in list(_LIVE):
        proc.kill()


atexit.register(_reap_leftovers)


def tail_file(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class ManagedProcess(Component):
    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        ready: Callable[[], bool],
        endpoints: Mapping[str, Endpoint],
        ready_timeout_s: float = 30.0,
        on_event: Callable[[str, Mapping[str, object]], None] | None = None,
        *,
        owner: str | None = None,
        beside: ManagedProcess | None = None,
    ) -> None:
        """`owner`: whose address the program listens at (harness/runtime/base.py
        `Network`), its own name unless it shares one; `beside`: a component whose
        network it shares (RabbitMQ's node and its epmd). On loopback every program
        shares one network, so a process only keeps them."""
        self.name = name
        self.owner = owner or name
        self.beside = beside
        self.argv = argv
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_path
        self.ready = ready
        self.endpoints = dict(endpoints)
        self.ready_timeout_s = ready_timeout_s
        self.on_event = on_event
        self._popen: subprocess.Popen[bytes] | None = None
        self._paused = False
        self.incarnations: list[int] = []

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self.is_running():
            return
        self.cwd.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        log.write(f"\n=== start {self.name} at {time.strftime('%H:%M:%S')} ===\n".encode())
        log.flush()
        try:
            self._popen = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        except OSError as exc:
            raise ComponentStartError(self.name, f"cannot execute {self.argv[0]}: {exc}") from exc
        finally:
            log.close()
        _LIVE.add(self)
        self._paused = False
        self.incarnations.append(self._popen.pid)
        self._emit("start", {"pid": self._popen.pid})
        self._await_ready()

    def _await_ready(self) -> None:
        """Block until the component is ready; a start that fails kills what it started
        and raises ComponentStartError with the log's tail."""
        try:
            wait_until(self._ready_or_dead, self.ready_timeout_s, f"{self.name} to be ready",
                       interval_s=0.05)
        except Exception as exc:
            tail = self.logs()
            self.kill()
            raise ComponentStartError(self.name, str(exc).splitlines()[0], tail) from exc
        if not self.is_running():
            tail = self.logs()
            raise ComponentStartError(self.name, f"exited with status {self.returncode}", tail)

    def _ready_or_dead(self) -> bool:
        return (not self.is_running()) or self.ready()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._popen is None:
            return
        if self.is_running():
            self.resume()  # a stopped process cannot act on SIGTERM
            self._signal(signal.SIGTERM)
            try:
                self._popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._popen.wait(timeout=10)
        self._finish("stop")

    def kill(self) -> int | None:
        if self._popen is None:
            return None
        if self.is_running():
            self._signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=10)
        # Group members that outlived the leader (none expected) get the same treatment.
        self._signal(signal.SIGKILL)
        status = self._popen.returncode
        self._finish("kill")
        return status

    def _finish(self, how: str) -> None:
        assert self._popen is not None
        self._signal(signal.SIGKILL)  # sweep any orphaned member of the group
        _LIVE.discard(self)
        self._paused = False
        self._emit(how, {"pid": self._popen.pid, "returncode": self._popen.returncode})

    def pause(self) -> None:
        if self.is_running() and not self._paused:
            self._signal(signal.SIGSTOP)
            self._paused = True
            self._emit("pause", {"pid": self.identity})

    def resume(self) -> None:
        if self._paused:
            self._signal(signal.SIGCONT)
            self._paused = False
            self._emit("resume", {"pid": self.identity})

    def send_signal(self, sig: signal.Signals) -> None:
        """Deliver `sig` to the component's main process (a graceful-shutdown request that
        differs from SIGTERM, for instance). No-op when it is not running."""
        if self._popen is not None and self.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._popen.pid, sig)

    def _signal(self, sig: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, sig)

    def run_helper(self, argv: list[str], timeout_s: float,
                   stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a one-shot helper program (rabbitmqctl, initdb) where this component runs,
        with its environment and working folder, and `stdin` as its input; its output,
        whatever its exit status. Raises OSError when it cannot be started,
        TimeoutExpired when it overruns."""
        return subprocess.run(argv, env=self.env, cwd=self.cwd, input=stdin,
                              capture_output=True, text=True, timeout=timeout_s, check=False)

    # -- observation --------------------------------------------------------------------
    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    @property
    def identity(self) -> str:
        return f"pid {self._popen.pid}" if self._popen else "not started"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def logs(self, tail_lines: int = 40) -> str:
        return tail_file(self.log_path, tail_lines)

    def endpoint(self, port_name: str = "main") -> Endpoint:
        return self.endpoints[port_name]

    def _emit(self, what: str, data: Mapping[str, object]) -> None:
        if self.on_event is not None:
            self.on_event(what, {"component": self.name, **data})


class Launcher(Protocol):
    """What runs one program as a component: ManagedProcess itself, or a runtime's own
    (harness/runtime/containers.py runs the same program in a container)."""

    def __call__(self, name: str, argv: list[str], env: Mapping[str, str], cwd: Path,
                 log_path: Path, ready: Callable[[], bool], endpoints: Mapping[str, Endpoint],
                 ready_timeout_s: float = 30.0,
                 on_event: Callable[[str, Mapping[str, object]], None] | None = None,
                 *, owner: str | None = None, beside: ManagedProcess | None = None,
                 ) -> ManagedProcess: ...


class ProcessBacked(Component):
    """A component that is one ManagedProcess (`self.server`) plus what it adds (a broker
    node's epmd, a storage server, its own start arguments): every Component operation it
    does not override goes to that process."""

    server: ManagedProcess
    stop_timeout_s = 10.0

    def start(self) -> None:
        self.server.start()

    def stop(self, timeout_s: float | None = None) -> None:
        self.server.stop(self.stop_timeout_s if timeout_s is None else timeout_s)

    def kill(self) -> int | None:
        return self.server.kill()

    def pause(self) -> None:
        self.server.pause()

    def resume(self) -> None:
        self.server.resume()

    def is_running(self) -> bool:
        return self.server.is_running()

    def logs(self, tail_lines: int = 40) -> str:
        return self.server.logs(tail_lines)

    def state(self) -> str | None:
        return self.server.state()

    def endpoint(self, port_name: str = "main") -> Endpoint:
        return self.server.endpoint(port_name)

    @property
    def identity(self) -> str:
        return self.server.identity
