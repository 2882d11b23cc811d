"""Scenario files on real RabbitMQ and real service processes: `harness show` writes a
catalogue scenario to a file, and `harness run --scenario-file` runs it through the same
runner, with the same verdicts (a pass on the correct services, a fail on a bug variant)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import cli

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.usefixtures("keep_sigterm_handler")]

SEED = 20261122



def show(name: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(["show", name]) == cli.EXIT_PASS
    return capsys.readouterr().out


def run_file(path: Path, root: Path, *options: str) -> tuple[int, dict[str, Any]]:
    """`harness run --scenario-file path`: its exit code and the run.json it wrote."""
    code = cli.main(["run", "--scenario-file", str(path), "--seed", str(SEED),
                     "--report-dir", str(root), *options])
    (run_json,) = root.glob("*/run.json")
    return code, json.loads(run_json.read_text())


def test_a_shown_scenario_runs_from_its_file_and_passes(
        leak_check: Path, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path_factory.mktemp("files") / "steady_state.toml"
    path.write_text(show("steady_state", capsys))
    code, run = run_file(path, leak_check)
    (scenario,) = run["scenarios"]
    assert (scenario["name"], scenario["verdict"], code) == ("steady_state", "pass", 0), \
        scenario["checks"]
    assert {c["name"] for c in scenario["checks"]} >= {"convergence", "no_lost_updates",
                                                       "replica_matches_tap_model"}
    assert scenario["scenario_file"] == str(path)
    assert run["replay"].startswith(f"harness run --scenario-file {path} --seed {SEED} ")


def test_a_variant_fails_on_a_shown_and_edited_scenario_file(
        leak_check: Path, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The user's edit: a variant that loses data never converges, so no need to wait 30 s.
    text = show("consumer_crash", capsys).replace(
        "\n[workload]", "converge_timeout_s = 8\n\n[workload]", 1)
    path = tmp_path_factory.mktemp("files") / "crash.toml"
    path.write_text(text)
    code, run = run_file(path, leak_check, "--variant", "ack_before_commit")
    (scenario,) = run["scenarios"]
    assert (scenario["verdict"], code, run["variant"]) == ("fail", 1, "ack_before_commit")
    failed = {c["name"]: c["details"] for c in scenario["checks"] if not c["ok"]}
    assert "lost updates" in failed["no_lost_updates"]
    # Its three crashes were injected, as the catalogue's scenario would do them.
    assert [f["target"] for f in scenario["faults"]] == ["consumer"] * 3
