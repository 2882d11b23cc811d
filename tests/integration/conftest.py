"""Shared helpers for integration tests (real RabbitMQ, real processes)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.runtime.processes import ProcessRuntime


def processes_started_under(root: Path) -> list[tuple[int, str]]:
    """Live processes whose RCH_RUN_DIR (set by the harness on everything it starts) lies
    under `root`: anything listed here leaked."""
    marker = f"RCH_RUN_DIR={root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split()[2]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if state != "Z" and any(v.startswith(marker) for v in environ.split(b"\0")):
            found.append((int(entry.name), cmdline[:120]))
    return found


@pytest.fixture
def leak_check(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Yields a report root; fails the test if any process started under it survives."""
    yield tmp_path
    leaked = processes_started_under(tmp_path)
    assert not leaked, f"processes left running after the test: {leaked}"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ProcessRuntime]:
    """A process runtime rooted in the test's folder; fails the test if anything it
    started survives its close."""
    runtime = ProcessRuntime(tmp_path)
    try:
        yield runtime
    finally:
        runtime.close()
    leaked = processes_started_under(tmp_path)
    assert not leaked, f"processes left running after the test: {leaked}"


def sigint_as_at_a_terminal() -> None:
    """`preexec_fn` of a harness a test interrupts with SIGINT: a shell without job control
    starts background jobs with SIGINT ignored, and a Python started that way never raises
    KeyboardInterrupt. At a terminal, Ctrl-C finds SIGINT at its default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def keep_sigterm_handler() -> Iterator[None]:
    """For tests that call the CLI in-process: it installs its own SIGTERM handler, which
    must not outlive the test."""
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)
