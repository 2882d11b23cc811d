"""The wheelhouse: every runtime dependency of the project as wheels, built on the host.

pip cannot reach an index from inside a container here (the index's certificate chain is
trusted only by the host's CA bundle), so the host's pip builds the wheels and the image
installs them with `--no-index`. Versions are pinned to those installed in the running
environment (the ones the tests ran with), so the image runs the same code as the host.
A wheelhouse is kept under the user's cache, named by a digest of what it was asked for;
the next build reuses it without touching the network.

The wheels fit the image because both sides are Debian bookworm with CPython 3.11 (glibc
2.36); a host on a newer glibc could pick manylinux wheels the image cannot load.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

from harness.errors import SetupError
from harness.images.recipes import input_digest

# Build requirements of the project itself, installed in the image's venv so that the
# project can be built there without an index (pip wheel --no-build-isolation).
BUILD_REQUIREMENTS = ("setuptools>=77", "wheel")
REQUIREMENTS = "requirements.txt"
# Written last: a wheelhouse without it was interrupted and is built again.
COMPLETE = ".complete"
PIP_TIMEOUT_S = 900.0


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "replication-chaos-harness"


def runtime_requirements(pyproject: Path) -> list[str]:
    """The project's runtime dependencies (not the dev extra) plus its build requirements."""
    project = tomllib.loads(pyproject.read_text())["project"]
    return [*project["dependencies"], *BUILD_REQUIREMENTS]


def installed_pins(python: str = sys.executable) -> list[str]:
    """`name==version` of every distribution installed in the running environment. Lines
    that name a local path or URL (the project itself) are left out: they are not on the
    index."""
    listing = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"],
                             capture_output=True, text=True, check=True, timeout=120)
    return sorted(line for line in listing.stdout.splitlines()
                  if "==" in line and " @ " not in line)


def wheelhouse_key(requirements: list[str], pins: list[str]) -> str:
    return input_digest({"requirements": requirements, "pins": pins,
                         "python": f"cp{sys.version_info.major}{sys.version_info.minor}"})


def wheel_files(wheelhouse: Path) -> list[str]:
    """The wheelhouse's file list: what the deps image's digest is computed from (wheel
    names carry name, version and platform)."""
    return sorted(path.name for path in wheelhouse.glob("*.whl"))


def ensure_wheelhouse(pyproject: Path, say: Callable[[str], None]) -> Path:
    """The wheelhouse for this project and environment, built when missing."""
    requirements = runtime_requirements(pyproject)
    pins = installed_pins()
    target = cache_root() / "wheelhouse" / wheelhouse_key(requirements, pins)
    if (target / COMPLETE).is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    (target / REQUIREMENTS).write_text("\n".join(requirements) + "\n")
    (target / "constraints.txt").write_text("\n".join(pins) + "\n")
    say(f"building the wheelhouse with the host's pip into {target}")
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check",
            "--prefer-binary", "-w", str(target), "-r", str(target / REQUIREMENTS),
            "-c", str(target / "constraints.txt")]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise SetupError(f"pip wheel did not finish within {PIP_TIMEOUT_S:.0f} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise SetupError(f"pip wheel failed (exit {done.returncode}); the wheelhouse needs "
                         f"the package index reachable from the host:\n{tail}")
    (target / COMPLETE).touch()
    return target
