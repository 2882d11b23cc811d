"""Unit tests for harness.runtime.process.ManagedProcess with trivial Python children."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from harness.errors import ComponentStartError
from harness.runtime import process as process_module
from harness.runtime.base import Endpoint
from harness.runtime.process import ManagedProcess, tail_file

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
Factory = Callable[..., ManagedProcess]


def proc_state(pid: int) -> str:
    """The one-letter state from /proc/<pid>/stat (R, S, T, Z, ...)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def wait_for_state(pid: int, states: str, timeout_s: float = 5.0) -> str:
    deadline = time.monotonic() + timeout_s
    state = proc_state(pid)
    while state not in states and time.monotonic() < deadline:
        time.sleep(0.01)
        state = proc_state(pid)
    return state


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def dead_or_zombie(pid: int) -> bool:
    if gone(pid):
        return True
    try:
        return proc_state(pid) == "Z"  # killed, waiting for a reaper that never comes
    except FileNotFoundError:
        return True


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


@pytest.fixture
def events() -> list[tuple[str, dict[str, object]]]:
    return []


@pytest.fixture
def make(tmp_path: Path, events: list[tuple[str, dict[str, object]]]) -> Iterator[Factory]:
    created: list[ManagedProcess] = []

    def factory(argv: list[str] = SLEEPER, ready: Callable[[], bool] = lambda: True,
                ready_timeout_s: float = 10.0) -> ManagedProcess:
        def record(what: str, data: Mapping[str, object]) -> None:
            events.append((what, dict(data)))

        proc = ManagedProcess("child", argv, dict(os.environ), tmp_path / "child",
                              tmp_path / "child.log", ready=ready,
                              endpoints={"main": Endpoint("127.0.0.1", 1)},
                              ready_timeout_s=ready_timeout_s, on_event=record)
        created.append(proc)
        return proc

    yield factory
    for proc in created:  # never leave a child behind, whatever the test did
        proc.kill()


def test_start_and_stop(make: Factory,
                        events: list[tuple[str, dict[str, object]]]) -> None:
    proc = make()
    proc.start()
    pid = proc.pid
    assert pid is not None
    assert proc.is_running()
    assert proc.identity == f"pid {pid}"
    assert proc.incarnations == [pid]
    assert proc.endpoint() == Endpoint("127.0.0.1", 1)
    assert os.getpgid(pid) == pid  # its own process group
    assert proc in process_module._LIVE
    proc.stop(timeout_s=5)
    assert not proc.is_running()
    assert proc.returncode == -15
    assert gone(pid)
    assert proc not in process_module._LIVE
    assert [what for what, _ in events] == ["start", "stop"]
    assert events[0][1] == {"component": "child", "pid": pid}


def test_stop_is_idempotent(make: Factory) -> None:
    proc = make()
    proc.stop()  # never started: nothing to do
    assert proc.returncode is None
    proc.start()
    pid = proc.pid
    assert pid is not None
    proc.stop(timeout_s=5)
    proc.stop(timeout_s=5)
    assert proc.returncode == -15
    assert gone(pid)


def test_start_when_running_is_a_no_op(make: Factory) -> None:
    proc = make()
    proc.start()
    pid = proc.pid
    proc.start()
    assert proc.pid == pid
    assert proc.incarnations == [pid]


@needs_proc
def test_pause_and_resume(make: Factory,
                          events: list[tuple[str, dict[str, object]]]) -> None:
    proc = make()
    proc.start()
    pid = proc.pid
    assert pid is not None
    proc.pause()
    assert wait_for_state(pid, "T") == "T"
    proc.pause()  # idempotent: one event only
    proc.resume()
    assert wait_for_state(pid, "RS") in "RS"
    proc.resume()
    assert [what for what, _ in events] == ["start", "pause", "resume"]
    assert proc.is_running()


def test_stop_of_a_paused_process_resumes_it_first(make: Factory) -> None:
    proc = make()
    proc.start()
    pid = proc.pid
    assert pid is not None
    proc.pause()
    started = time.monotonic()
    proc.stop(timeout_s=5)
    assert time.monotonic() - started < 4  # SIGTERM worked, no kill after the timeout
    assert proc.returncode == -15
    assert gone(pid)


def test_kill_returns_minus_9_and_the_process_is_gone(make: Factory) -> None:
    proc = make()
    assert proc.kill() is None  # never started
    proc.start()
    pid = proc.pid
    assert pid is not None
    assert proc.kill() == -9
    assert not proc.is_running()
    assert gone(pid)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    proc.stop()  # after a kill, stop is harmless
    assert proc.returncode == -9


def test_kill_a_paused_process(make: Factory) -> None:
    proc = make()
    proc.start()
    proc.pause()
    assert proc.kill() == -9


def test_kill_reaches_the_whole_process_group(make: Factory,
                                              tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    proc = make([sys.executable, "-c", script], ready=pid_file.exists)
    proc.start()
    grandchild = int(pid_file.read_text())
    assert not gone(grandchild)
    proc.kill()
    deadline = time.monotonic() + 5
    while not dead_or_zombie(grandchild) and time.monotonic() < deadline:
        # The grandchild is re-parented to init (or a subreaper) which reaps it.
        time.sleep(0.02)
    assert dead_or_zombie(grandchild)


def test_restart_gives_a_new_incarnation(make: Factory) -> None:
    proc = make()
    proc.start()
    first = proc.pid
    proc.restart()
    assert proc.is_running()
    assert proc.pid != first
    assert proc.incarnations == [first, proc.pid]
    assert first is not None and gone(first)
    proc.stop()


def test_child_that_exits_immediately_raises_with_its_log_tail(
        make: Factory) -> None:
    proc = make([sys.executable, "-c",
                 "import sys; print('cannot bind port 5672: marker-4711'); sys.exit(3)"],
                ready=lambda: False)
    with pytest.raises(ComponentStartError) as info:
        proc.start()
    error = info.value
    assert error.component == "child"
    assert error.reason == "exited with status 3"
    assert "marker-4711" in error.log_tail
    assert "marker-4711" in str(error)
    assert "last lines of child's log" in str(error)
    assert not proc.is_running()


def test_child_never_ready_is_killed_and_raises(make: Factory) -> None:
    proc = make(ready=lambda: False, ready_timeout_s=0.3)
    with pytest.raises(ComponentStartError) as info:
        proc.start()
    assert "timed out" in info.value.reason
    assert "=== start child" in info.value.log_tail
    pid = proc.pid
    assert pid is not None and gone(pid)
    assert proc not in process_module._LIVE


def test_missing_executable_raises_component_start_error(make: Factory,
                                                         tmp_path: Path) -> None:
    proc = make([str(tmp_path / "no-such-binary")])
    with pytest.raises(ComponentStartError, match="cannot execute"):
        proc.start()
    assert proc.pid is None


def test_tail_file(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert tail_file(log, 5) == ""
    log.write_text("\n".join(f"line {i}" for i in range(100)) + "\n")
    assert tail_file(log, 3) == "line 97\nline 98\nline 99"
