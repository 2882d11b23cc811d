"""The containers runtime end to end: the key scenarios pass in containers on both brokers
(PostgreSQL's outbox scenario too), a bug variant is still caught there, and nothing with
the run's label is left in Docker after a pass, a failure or an interrupt."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.history import read_history
from harness.images.recipes import POSTGRES_UID
from harness.links import Links
from harness.results import ScenarioResult
from harness.runtime import containers, postgres_node, rabbitmq_node
from harness.runtime.base import Endpoint
from harness.runtime.containers import OWNER, OWNER_LABEL, PID_LABEL, RUN_LABEL
from harness.session import load_catalogue, run_scenarios
from harness.settings import RunSettings
from tests.integration.conftest import processes_started_under, sigint_as_at_a_terminal

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.containers]

SEED = 515151
# The scenarios the containers runtime must carry on every broker (CI runs them here).
KEY_SCENARIOS = ("steady_state", "consumer_crash", "broker_outage_kill", "broker_outage_pause",
                 "network_faults_relay", "broker_data_loss")
# Where a Docker engine answers (CI starts one) these run here and the processes catalogue
# tests leave them out, so each scenario still runs once per broker; elsewhere those
# tests run them in processes.
CONTAINERS_HERE = containers.docker_answers()


def in_processes(names: Iterable[str]) -> list[str]:
    """`names` without the scenarios this module runs in containers on this machine."""
    return [n for n in names if not (CONTAINERS_HERE and n in KEY_SCENARIOS)]


@pytest.fixture(scope="module")
def docker() -> Iterator[Any]:
    if not containers.docker_answers():
        if os.environ.get("CI"):
            pytest.fail("no Docker engine answers; CI must run these tests (`make docker` "
                        "installs and starts one as root)")
        pytest.skip("no Docker engine answers (`make docker` starts one as root)")
    client = containers.docker_client()
    yield client
    client.close()


def labelled(client: Any, run_id: str) -> list[str]:
    """Containers and networks that carry the run's label: anything here leaked."""
    found = [c.name for c in client.containers.list(
        all=True, filters={"label": f"{RUN_LABEL}={run_id}"})]
    found += [n.name for n in client.networks.list(filters={"label": f"{RUN_LABEL}={run_id}"})]
    return found


def run_in_containers(client: Any, root: Path, name: str, broker: str = "rabbitmq",
                      variant: str = "none", db: str = "sqlite") -> ScenarioResult:
    chosen = load_catalogue()[name]
    if variant != "none":
        # A variant that loses data never converges: no need to wait the full deadline.
        chosen = dataclasses.replace(chosen, converge_timeout_s=8.0)
    result, report_dir = run_scenarios(
        [chosen],
        RunSettings(seed=SEED, broker=broker, runtime="containers", variant=variant,
                    report_root=root, db=db))
    assert result.runtime == "containers"
    scenario = result.scenarios[0]
    # Every component ran in a container: the lifecycle record names one at each start.
    starts = [e for e in read_history(report_dir / name / "history.jsonl")
              if e.get("kind") == "lifecycle" and e.get("event") == "start"]
    assert starts, f"{name}: no component start recorded"
    assert all("container" in e for e in starts), starts
    # ... on the run's private network under its own name, or sharing its peer's
    # (RabbitMQ's server beside its epmd): none on the host's network.
    network = next(e["name"] for e in read_history(report_dir / name / "history.jsonl")
                   if e.get("event") == "network")
    assert all(e.get("network") == network or e.get("network_of") for e in starts), starts
    assert labelled(client, result.run_id) == [], "containers left after the run"
    assert processes_started_under(root) == []
    return scenario


@pytest.mark.parametrize("broker", ["rabbitmq", "kafka"])
@pytest.mark.parametrize("name", KEY_SCENARIOS)
def test_key_scenario_passes_in_containers(docker: Any, tmp_path: Path, name: str,
                                           broker: str) -> None:
    scenario = run_in_containers(docker, tmp_path, name, broker)
    assert scenario.verdict == "pass", scenario.to_dict()


@pytest.mark.parametrize("broker", ["rabbitmq", "kafka"])
def test_outbox_commit_order_passes_on_postgres_in_containers(docker: Any, tmp_path: Path,
                                                             broker: str) -> None:
    scenario = run_in_containers(docker, tmp_path, "outbox_commit_order", broker, db="postgres")
    assert scenario.verdict == "pass", scenario.to_dict()


# Crash points, not a timed kill: in containers a kill travels through the engine's API, so
# whether it lands inside a batch is a matter of milliseconds; a crash point lands there
# every time.
@pytest.mark.parametrize(("broker", "db", "name", "variant"), [
    ("rabbitmq", "sqlite", "consumer_crash_points", "ack_before_commit"),
    ("rabbitmq", "postgres", "outbox_commit_order", "relay_by_sequence_only")])
def test_variant_is_caught_in_containers_and_leaves_nothing(
        docker: Any, tmp_path: Path, broker: str, db: str, name: str, variant: str) -> None:
    scenario = run_in_containers(docker, tmp_path, name, broker, variant, db)
    assert scenario.verdict == "fail", scenario.to_dict()
    failed = [c["name"] for c in scenario.to_dict()["checks"] if c["status"] == "fail"]
    assert failed, scenario.to_dict()


def test_interrupt_removes_every_container(docker: Any, tmp_path: Path) -> None:
    env = {**os.environ, "RCH_RUNTIME": "containers"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", "steady_state", "--seed", "5",
         "--report-dir", str(tmp_path)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=sigint_as_at_a_terminal)
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 180
    try:
        for line in proc.stdout:
            seen.append(line)
            if "load:" in line or time.monotonic() > deadline:
                break
        assert any("load:" in line for line in seen), "".join(seen)
        running = docker.containers.list(filters={"label": f"{PID_LABEL}={proc.pid}"})
        assert running, "the run had started no container to clean up"
        assert docker.networks.list(filters={"label": f"{PID_LABEL}={proc.pid}"}), \
            "the run had made no network to clean up"
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, "".join(seen) + output
    assert "Traceback" not in output
    left = docker.containers.list(all=True, filters={"label": f"{PID_LABEL}={proc.pid}"})
    assert left == [], [c.name for c in left]
    networks = docker.networks.list(filters={"label": f"{PID_LABEL}={proc.pid}"})
    assert networks == [], [n.name for n in networks]
    assert processes_started_under(tmp_path) == []


def test_leftovers_of_a_dead_harness_are_removed_at_the_next_start(docker: Any,
                                                                  tmp_path: Path) -> None:
    # A container labelled as started by a harness process that no longer exists.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    images = containers_images()
    orphan = docker.containers.create(
        images["python"], command=["sleep", "300"], init=True,
        labels={OWNER_LABEL: OWNER, RUN_LABEL: "interrupted-run", PID_LABEL: str(dead.pid)})
    network = docker.networks.create(
        f"rch-orphan-{dead.pid}",
        labels={OWNER_LABEL: OWNER, RUN_LABEL: "interrupted-run", PID_LABEL: str(dead.pid)})
    try:
        runtime = containers.ContainerRuntime(tmp_path, images, "next-run")
        runtime.close()
        assert labelled(docker, "interrupted-run") == []
    finally:
        # Already removed by the runtime, as they should be, unless the test failed.
        with contextlib.suppress(Exception):
            orphan.remove(force=True)
        with contextlib.suppress(Exception):
            network.remove()


def test_helper_programs_run_in_the_components_images(docker: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # No PostgreSQL on the host as far as the harness can tell: initdb must come from the
    # image, as on a machine that has only Docker.
    monkeypatch.setattr(postgres_node, "INSTALL_ROOT", tmp_path / "no-postgres-here")
    runtime = containers.ContainerRuntime(tmp_path, containers_images(), "helpers-run")
    try:
        node = runtime.rabbitmq("rabbitmq")
        node.start()
        # In the broker's own container: its first process is Docker's init, not the host's.
        inside = node.server.run_helper(["/bin/cat", "/proc/1/cmdline"], 10)
        assert "docker-init" in inside.stdout, inside
        assert "docker-init" not in Path("/proc/1/cmdline").read_text()
        listed = node.rabbitmqctl(["list_vhosts", "--no-table-headers"], 30)
        assert listed.returncode == 0 and "/" in listed.stdout.split(), listed
        # initdb runs in a one-shot container (the server is not up yet) as the image's
        # postgres account, which then owns the cluster.
        cluster = runtime.postgres("postgres")
        try:
            cluster.start()
            assert cluster.data_dir.stat().st_uid == POSTGRES_UID
            assert cluster.database("helpers").startswith("postgresql+psycopg://")
        finally:
            cluster.close()
    finally:
        runtime.close()
    assert labelled(docker, "helpers-run") == []


def containers_images() -> dict[str, str]:
    from harness.runtime.registry import container_images

    return container_images(lambda _msg: None)


def test_components_reach_each_other_by_name_on_the_runs_own_network(
        docker: Any, tmp_path: Path) -> None:
    runtime = containers.ContainerRuntime(tmp_path, containers_images(), "network-run")
    network = runtime.network
    try:
        broker = runtime.rabbitmq("broker")
        broker.start()
        proxy = runtime.fault_proxy(seed=1)
        proxy.start()
        links = Links(proxy.endpoint(), network.bind_host)
        # The fault proxy dials the broker by its name; a client is handed the link's name.
        link = links.create("client_broker", broker.endpoint())
        assert broker.endpoint().inside.host == "broker"
        assert link.inside.host == "faultproxy"
        # A container on the network reaches the broker through the link by names alone.
        probe = ("import pika; pika.BlockingConnection(pika.URLParameters("
                 f"'amqp://guest:guest@{link.inside.address}/%2F')).close(); print('ok')")
        dialled = subprocess.run(
            # Labelled as the run's, so the runtime's close removes it if the test fails.
            ["docker", "run", "--rm", "--network", network.name,
             *(f"--label={key}={value}" for key, value in runtime.labels.items()),
             containers_images()["python"],
             f"{containers.IMAGE_VENV}/bin/python", "-c", probe],
            capture_output=True, text=True, timeout=60, check=False)
        assert dialled.stdout.strip() == "ok", dialled
        # The harness dials addresses on the network's subnet, not the host's loopback,
        # where nothing of the run listens.
        outside = broker.endpoint()
        assert ipaddress.ip_address(outside.host) in network.subnet
        assert rabbitmq_node.amqp_ready(link)
        assert not rabbitmq_node.amqp_ready(Endpoint("127.0.0.1", outside.port))
        # A restarted broker is a new container at the same address.
        before = broker.identity
        broker.kill()
        broker.start()
        assert broker.identity != before and rabbitmq_node.amqp_ready(link)
    finally:
        runtime.close()
    assert labelled(docker, "network-run") == []
