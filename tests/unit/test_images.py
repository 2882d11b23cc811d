"""Image tags are digests of their inputs: a changed input changes the tag (and so
rebuilds the image and everything above it); unchanged inputs keep it (so a second build
builds nothing). No Docker engine needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.images import recipes
from harness.images.build import debian_mirror
from harness.images.recipes import docker_recipe, file_hashes, project_sources, rootfs_recipe
from harness.images.wheelhouse import runtime_requirements, wheelhouse_key


def make_project(root: Path) -> None:
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['pika']\n")
    (root / "README.md").write_text("readme\n")
    for top in recipes.PROJECT_DIRS:
        (root / top).mkdir()
        (root / top / "__init__.py").write_text(f"# {top}\n")
    (root / "harness" / "__pycache__").mkdir()
    (root / "harness" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "scenarios" / "README.md").write_text("scenarios\n")


def project_tag(root: Path, parent: str = "rch-python-deps:aaaa") -> str:
    sources = project_sources(root)
    return docker_recipe(recipes.PYTHON, parent, sources=file_hashes(root, sources)).tag


def test_same_inputs_same_tag() -> None:
    assert rootfs_recipe().tag == rootfs_recipe().tag
    assert (docker_recipe(recipes.BASE, "rch-rootfs:1").tag
            == docker_recipe(recipes.BASE, "rch-rootfs:1").tag)


def test_tag_is_name_and_digest() -> None:
    recipe = docker_recipe(recipes.RABBITMQ, "rch-base:1")
    name, digest = recipe.tag.split(":")
    assert name == "rch-rabbitmq"
    assert len(digest) == recipes.DIGEST_CHARS and int(digest, 16) >= 0


def test_parent_change_changes_tag() -> None:
    for name in (recipes.BASE, recipes.RABBITMQ, recipes.POSTGRES, recipes.PYTHON_DEPS):
        assert docker_recipe(name, "p:1").tag != docker_recipe(name, "p:2").tag


def test_dockerfile_change_changes_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    before = docker_recipe(recipes.POSTGRES, "rch-base:1").tag
    monkeypatch.setattr(recipes, "DOCKERFILES", {**recipes.DOCKERFILES, recipes.POSTGRES:
                                                 recipes.POSTGRES_DOCKERFILE + "RUN true\n"})
    assert docker_recipe(recipes.POSTGRES, "rch-base:1").tag != before


def test_wheel_list_change_changes_deps_tag() -> None:
    wheels = ["pika-1.3.2-py3-none-any.whl"]
    tag = docker_recipe(recipes.PYTHON_DEPS, "rch-base:1", wheels=wheels).tag
    assert docker_recipe(recipes.PYTHON_DEPS, "rch-base:1", wheels=list(wheels)).tag == tag
    assert docker_recipe(recipes.PYTHON_DEPS, "rch-base:1",
                         wheels=["pika-1.4.4-py3-none-any.whl"]).tag != tag


def test_source_edit_changes_project_tag(tmp_path: Path) -> None:
    make_project(tmp_path)
    before = project_tag(tmp_path)
    assert project_tag(tmp_path) == before
    (tmp_path / "reference_services" / "__init__.py").write_text("# edited\n")
    assert project_tag(tmp_path) != before


def test_new_file_and_pyproject_change_project_tag(tmp_path: Path) -> None:
    make_project(tmp_path)
    before = project_tag(tmp_path)
    (tmp_path / "scenarios" / "new_one.py").write_text("X = 1\n")
    with_new = project_tag(tmp_path)
    assert with_new != before
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'y'\ndependencies = []\n")
    assert project_tag(tmp_path) != with_new


def test_bytecode_and_caches_are_not_inputs(tmp_path: Path) -> None:
    make_project(tmp_path)
    before = project_tag(tmp_path)
    (tmp_path / "harness" / "__pycache__" / "y.cpython-311.pyc").write_bytes(b"\1")
    (tmp_path / "harness" / "stray.pyc").write_bytes(b"\1")
    assert project_tag(tmp_path) == before
    names = {p.as_posix() for p in project_sources(tmp_path)}
    assert names == {"README.md", "pyproject.toml", "harness/__init__.py",
                     "reference_services/__init__.py", "scenarios/__init__.py",
                     "scenarios/README.md"}


def test_wheelhouse_key_follows_requirements_and_pins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'x'\ndependencies = ['pika>=1.3']\n"
        "[project.optional-dependencies]\ndev = ['mypy']\n")
    requirements = runtime_requirements(tmp_path / "pyproject.toml")
    assert requirements[0] == "pika>=1.3" and "mypy" not in requirements
    key = wheelhouse_key(requirements, ["pika==1.3.2"])
    assert wheelhouse_key(requirements, ["pika==1.3.2"]) == key
    assert wheelhouse_key(requirements, ["pika==1.4.4"]) != key
    assert wheelhouse_key([*requirements, "flask"], ["pika==1.3.2"]) != key


def test_mirror_comes_from_the_hosts_sources(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\n# http://snapshot.example/archive\n"
                      "URIs: http://mirror.example/debian\nSuites: bookworm\n")
    monkeypatch.setattr("harness.images.build.SOURCES_FILES", (deb822,))
    assert debian_mirror() == "http://mirror.example/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n")
    monkeypatch.setattr("harness.images.build.SOURCES_FILES", (tmp_path / "absent", one_line))
    assert debian_mirror() == "http://other.example/debian"


def test_a_build_removes_the_images_it_superseded(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import SetupError
    from harness.images import build
    from harness.images.docker_cli import ImageRow

    def row(tag: str) -> ImageRow:
        return ImageRow(tag=tag, image=tag.partition(":")[0], digest=tag.partition(":")[2],
                        size="1MB", created="now")

    local = ["rch-python:new", "rch-python:old", "rch-python:running", "rch-base:cur",
             "rch-other:keep"]
    calls: list[list[str]] = []

    def fake_docker(args: list[str], timeout_s: float = 0.0) -> str:
        calls.append(list(args))
        if args[-1] == "rch-python:running":
            raise SetupError("image is being used by running container")
        return ""

    monkeypatch.setattr(build, "project_images", lambda: [row(t) for t in local])
    monkeypatch.setattr(build, "docker", fake_docker)
    removed = build.remove_superseded({"rch-python:new", "rch-base:cur"})
    # The old digest goes; the one in use stays; an image of another name is not ours to
    # judge; the current ones are kept.
    assert removed == ["rch-python:old"]
    assert calls == [["rmi", "rch-python:old"], ["rmi", "rch-python:running"]]
