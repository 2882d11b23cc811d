"""`--image-source registry`: the official images instead of local builds, where a
registry is reachable. The reference services still run in the local Python image (it
holds this project); the broker and database images are swapped for their official
counterparts, with no scenario change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from harness.errors import SetupError
from harness.images.build import BuildOutcome, Progress, build_images
from harness.images.docker_cli import docker

IMAGE_SOURCES = ("local", "registry")
# Our role -> the official image that fills it.
REGISTRY_IMAGES: Mapping[str, str] = {
    "rabbitmq": "rabbitmq:3-management",
    "postgres": "postgres:15",
    "kafka": "ghcr.io/tansu-io/tansu:latest",
}
PULL_TIMEOUT_S = 300.0


def pull_registry_images(progress: Progress) -> None:
    """Pull every official image; the first failure says that no registry is reachable."""
    for role, image in REGISTRY_IMAGES.items():
        progress(f"images: docker pull {image} ({role})")
        try:
            docker(["pull", "-q", image], timeout_s=PULL_TIMEOUT_S)
        except SetupError as exc:
            raise SetupError(f"--image-source registry: `docker pull {image}` failed, so no "
                             "registry is reachable from this machine; build the images "
                             "here instead with --image-source local (the default)\n"
                             f"{exc}") from exc


def build_from_registry(progress: Progress, *, force: bool = False, verbose: bool = False,
                        ) -> BuildOutcome:
    pull_registry_images(progress)
    outcome = build_images(progress, force=force, verbose=verbose)
    outcome.images = replace(outcome.images, rabbitmq=REGISTRY_IMAGES["rabbitmq"],
                             postgres=REGISTRY_IMAGES["postgres"],
                             kafka=REGISTRY_IMAGES["kafka"], source="registry")
    return outcome
