"""The few Docker engine calls the image builder makes, through the `docker` command line
(the engine's own client: its errors read the same as when a user types them)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SetupError

PROBE_TIMEOUT_S = 10.0
BUILD_TIMEOUT_S = 1800.0
ERROR_TAIL_LINES = 25


def docker_available(timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True when a Docker engine answers (the client alone is not enough)."""
    if shutil.which("docker") is None:
        return False
    try:
        done = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                              capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def require_docker() -> None:
    if not docker_available():
        raise SetupError("no Docker engine answers: start one (as root: `make docker`, which "
                         "installs docker.io and starts dockerd) or use --runtime processes")


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-ERROR_TAIL_LINES:])


def docker(args: Sequence[str], timeout_s: float = BUILD_TIMEOUT_S) -> str:
    """Run `docker ARGS`; its stdout, or a SetupError carrying its stderr's tail."""
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"docker {args[0]} did not finish within {timeout_s:.0f} s") from exc
    if done.returncode != 0:
        raise SetupError(f"docker {' '.join(args[:2])} failed (exit {done.returncode}):\n"
                         f"{_tail(done.stderr or done.stdout)}")
    return done.stdout


def image_exists(tag: str) -> bool:
    done = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag],
                          capture_output=True, timeout=PROBE_TIMEOUT_S)
    return done.returncode == 0


def label_args(labels: Mapping[str, str]) -> list[str]:
    return [arg for key, value in sorted(labels.items()) for arg in ("--label", f"{key}={value}")]


def build(context: Path, tag: str, labels: Mapping[str, str], *, no_cache: bool,
          echo: Callable[[str], None] | None) -> None:
    """`docker build` of `context` (its Dockerfile) as `tag`. `echo` receives the build's
    output line by line (--verbose); without it the output is kept for the error only."""
    argv = ["docker", "build", "--force-rm", "-t", tag, *label_args(labels)]
    if no_cache:
        argv.append("--no-cache")
    argv.append(str(context))
    kept: list[str] = []
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            kept.append(line)
            if echo is not None:
                echo(line.rstrip("\n"))
        status = proc.wait(timeout=BUILD_TIMEOUT_S)
    if status != 0:
        raise SetupError(f"docker build of {tag} failed (exit {status}):\n{_tail(''.join(kept))}")


def import_tree(tree: Path, tag: str, labels: Mapping[str, str]) -> None:
    """`tar -C tree -c . | docker import - tag`: a file system tree becomes an image."""
    changes = [arg for key, value in sorted(labels.items())
               for arg in ("--change", f"LABEL {key}={value}")]
    with subprocess.Popen(["tar", "-C", str(tree), "--numeric-owner", "-c", "."],
                          stdout=subprocess.PIPE) as tar:
        imported = subprocess.run(["docker", "import", *changes, "-", tag], stdin=tar.stdout,
                                  capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        assert tar.stdout is not None
        tar.stdout.close()
        tar_status = tar.wait()
    if tar_status != 0 or imported.returncode != 0:
        raise SetupError(f"importing {tree} as {tag} failed (tar exit {tar_status}, docker "
                         f"import exit {imported.returncode}):\n{_tail(imported.stderr)}")


@dataclass(frozen=True)
class ImageRow:
    """One local image of the project, as `harness images list` shows it."""

    tag: str
    image: str
    digest: str
    size: str
    created: str


def project_images() -> list[ImageRow]:
    """Every local image labelled as one of the project's, newest first."""
    # dangling=false: the untagged first stages of multi-stage builds carry the labels too.
    listing = docker(["images", "--filter", "label=rch.image", "--filter", "dangling=false",
                      "--format", "{{json .}}"],
                     timeout_s=PROBE_TIMEOUT_S)
    rows = []
    for line in listing.splitlines():
        entry = json.loads(line)
        tag = f"{entry['Repository']}:{entry['Tag']}"
        labels = json.loads(docker(["image", "inspect", "--format",
                                    "{{json .Config.Labels}}", tag],
                                   timeout_s=PROBE_TIMEOUT_S)) or {}
        rows.append(ImageRow(tag=tag, image=str(labels.get("rch.image", "?")),
                             digest=str(labels.get("rch.digest", "?")),
                             size=str(entry["Size"]), created=str(entry["CreatedSince"])))
    return rows
