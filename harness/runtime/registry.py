"""Runtimes by name: what `--runtime` resolves through.

`auto` (the command line's default) runs in containers when a Docker engine answers and in
local processes otherwise; the choice and why are printed and recorded in run.json. The
containers runtime builds any missing image on first use (harness/images), with progress.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError, SetupError
from harness.runtime.base import Network
from harness.runtime.processes import EventSink, ProcessRuntime

RUNTIMES = ("auto", "processes", "containers")
CONCRETE = ("processes", "containers")


@dataclass(frozen=True)
class RuntimeChoice:
    """The runtime a run uses, why, and what it needs (the containers runtime's images)."""

    name: str
    reason: str
    images: Mapping[str, str] = field(default_factory=dict)

    def create(self, work_dir: Path, run_id: str, on_event: EventSink | None = None,
               network: Network | None = None) -> ProcessRuntime:
        """`network`: another runtime's, to join (a kept broker's: the run's components
        must reach it); by default the runtime's own."""
        if self.name == "containers":
            from harness.runtime.containers import ContainerRuntime
            from harness.runtime.network import BridgeNetwork

            joined = network if isinstance(network, BridgeNetwork) else None
            return ContainerRuntime(work_dir, self.images, run_id, on_event, joined)
        return ProcessRuntime(work_dir, on_event)


PROCESSES = RuntimeChoice("processes", "asked for")


def choose_runtime(requested: str, progress: Callable[[str], None]) -> RuntimeChoice:
    """Resolve `requested` to a concrete runtime; for containers, make sure the images
    exist (a first build takes minutes and reports each step through `progress`)."""
    if requested not in RUNTIMES:
        raise ConfigError("--runtime", f"unsupported runtime {requested!r}",
                          f"use one of: {', '.join(RUNTIMES)}")
    if requested == "processes":
        return PROCESSES
    from harness.runtime.containers import docker_answers, docker_client

    if requested == "auto":
        if not docker_answers():
            return RuntimeChoice("processes", "auto: no Docker engine answers")
        try:
            images = container_images(progress)
        except SetupError as exc:
            # E.g. the first build needs root: the run still runs, in processes.
            return RuntimeChoice("processes", f"auto: the images cannot be built ({exc})")
        return RuntimeChoice("containers", "auto: a Docker engine answers", images)
    docker_client().close()  # SetupError with the way out when none answers
    return RuntimeChoice("containers", "asked for", container_images(progress))


def container_images(progress: Callable[[str], None]) -> dict[str, str]:
    """The image of each kind of program (harness/runtime/containers.py `choose_image`),
    built when missing."""
    from harness.images import ensure_images

    images = ensure_images(progress)
    return {"python": images.python, "rabbitmq": images.rabbitmq,
            "postgres": images.postgres}
