"""The containers runtime's images, built offline and cached by a digest of their inputs.

`ensure_images(progress)` returns the tags to run, building what is missing;
`docker_available()` says whether a Docker engine answers. Paths inside the images
(the venv's python, the Tansu binary, the servers) are the constants of `recipes`.
See docs/containers.md.
"""

from __future__ import annotations

from harness.images.build import BuildOutcome, ImageSet, Progress, build_images
from harness.images.docker_cli import docker_available
from harness.images.recipes import (
    MOTO_SERVER,
    POSTGRES_BIN,
    RABBITMQ_SERVER,
    TANSU_BINARY,
    VENV_PYTHON,
)
from harness.images.registry import IMAGE_SOURCES, build_from_registry

__all__ = ["IMAGE_SOURCES", "MOTO_SERVER", "POSTGRES_BIN", "RABBITMQ_SERVER", "TANSU_BINARY",
           "VENV_PYTHON", "BuildOutcome", "ImageSet", "build_images", "docker_available",
           "ensure_images", "prepare_images", "tansu_binary", "venv_python"]


def venv_python() -> str:
    """The in-image path of the Python that has the project and its dependencies."""
    return VENV_PYTHON


def tansu_binary() -> str:
    """The in-image path of the Tansu broker binary (in the Python image)."""
    return TANSU_BINARY


def prepare_images(progress: Progress, *, source: str = "local", force: bool = False,
                   verbose: bool = False) -> BuildOutcome:
    """Build (and with source "registry", pull) what the image set is missing."""
    if source == "registry":
        return build_from_registry(progress, force=force, verbose=verbose)
    return build_images(progress, force=force, verbose=verbose)


def ensure_images(progress: Progress, source: str = "local") -> ImageSet:
    """The image set to run, building what is missing (minutes the first time, seconds
    after). What the containers runtime calls before its first container."""
    return prepare_images(progress, source=source).images
