"""The offline images: built from Debian packages and the host's wheels, cached by digest
(a second build builds nothing and takes seconds), and holding what the containers runtime
runs. The first build on a machine takes minutes; later ones reuse every image."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.images import (
    POSTGRES_BIN,
    RABBITMQ_SERVER,
    TANSU_BINARY,
    VENV_PYTHON,
    BuildOutcome,
    build_images,
    docker_available,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WARM_BUILD_LIMIT_S = 10.0


def engine_or_skip() -> None:
    """A Docker engine that answers: started here when we are root (as `make docker`
    does), else the test is skipped."""
    if docker_available():
        return
    if os.geteuid() != 0:
        pytest.skip("no Docker engine answers and this is not root, so none can be started "
                    "(run `make docker` as root, or start dockerd)")
    subprocess.run([str(ROOT / "scripts" / "docker-engine")], check=True, timeout=300)
    assert docker_available(), "scripts/docker-engine returned but no engine answers"


@pytest.fixture(scope="module")
def built() -> BuildOutcome:
    engine_or_skip()
    return build_images(lambda line: print(line, flush=True))


def docker_run(image: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "run", "--rm", image, *argv], capture_output=True,
                          text=True, timeout=120)


def test_second_build_builds_nothing_within_seconds(built: BuildOutcome) -> None:
    began = time.monotonic()
    again = build_images(lambda line: None)
    took = time.monotonic() - began
    assert again.built == [], f"the second build rebuilt {[s.tag for s in again.built]}"
    assert again.images == built.images
    assert took < WARM_BUILD_LIMIT_S, f"the second build took {took:.1f} s"


def test_every_image_is_labelled_with_its_name_and_digest(built: BuildOutcome) -> None:
    for tag in (built.images.base, built.images.rabbitmq, built.images.postgres,
                built.images.python):
        labels = subprocess.run(
            ["docker", "image", "inspect", "--format",
             '{{index .Config.Labels "rch.image"}} {{index .Config.Labels "rch.digest"}}',
             tag], capture_output=True, text=True, check=True, timeout=30).stdout.split()
        assert labels == tag.split(":"), f"{tag} is labelled {labels}"


def test_python_image_holds_the_project_and_its_dependencies(built: BuildOutcome) -> None:
    imported = docker_run(built.images.python, VENV_PYTHON, "-c",
                          "import harness, reference_services, scenarios, pika, "
                          "confluent_kafka, psycopg, sqlalchemy, moto; print(harness.__file__)")
    assert imported.returncode == 0, imported.stderr
    # Installed, not a path into a checkout: the image stands alone.
    assert imported.stdout.strip().startswith("/opt/rch/venv/lib/"), imported.stdout


def test_tansu_runs_in_the_python_image(built: BuildOutcome) -> None:
    assert built.images.kafka == built.images.python
    version = docker_run(built.images.kafka, TANSU_BINARY, "--version")
    assert version.returncode == 0, version.stderr
    assert "tansu" in version.stdout


def test_servers_sit_where_the_host_has_them(built: BuildOutcome) -> None:
    rabbitmq = docker_run(built.images.rabbitmq, "test", "-x", RABBITMQ_SERVER)
    assert rabbitmq.returncode == 0, f"{RABBITMQ_SERVER} missing in {built.images.rabbitmq}"
    postgres = docker_run(built.images.postgres, "test", "-x", f"{POSTGRES_BIN}/postgres")
    assert postgres.returncode == 0, f"{POSTGRES_BIN}/postgres missing in {built.images.postgres}"
