"""Faults that overlap in a schedule overlap in the run: each lasting fault heals on its
own timer, so a fault on another target starts while the first still lasts, and one on the
same target waits until it healed. On real RabbitMQ and real service processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import cli

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.usefixtures("keep_sigterm_handler")]

SEED = 20261130

SCHEDULE = """
name = "overlap"
description = "a consumer pause with a relay link cut and a consumer stop inside it"
converge_timeout_s = 30

[workload]
rate_per_s = 150
duration_s = 9

[[faults]]
action = "pause"
target = "consumer"
at_s = 2.0
duration_s = 3.0

[[faults]]
action = "link_down"
target = "relay_broker"
at_s = 3.0
duration_s = 1.0

[[faults]]
action = "stop"
target = "consumer"
at_s = 3.5
duration_s = 1.0
"""



def test_faults_on_other_targets_overlap_and_on_the_same_target_wait(
        leak_check: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("files") / "overlap.toml"
    path.write_text(SCHEDULE)
    code = cli.main(["run", "--scenario-file", str(path), "--seed", str(SEED),
                     "--report-dir", str(leak_check)])
    (run_json,) = leak_check.glob("*/run.json")
    (scenario,) = json.loads(run_json.read_text())["scenarios"]
    assert (scenario["verdict"], code) == ("pass", cli.EXIT_PASS), scenario["checks"]
    faults: list[dict[str, Any]] = scenario["faults"]
    assert [(f["fault"].split(":")[0], f["target"]) for f in faults] == [
        ("pause", "consumer"), ("down", "relay_broker"), ("stop", "consumer")], faults
    pause, cut, stop = faults
    # The link was cut while the consumer was paused, and healed before it woke.
    assert pause["at"] < cut["at"] and cut["healed_at"] < pause["healed_at"], faults
    # The stop, due inside the pause, came after it: one target, one fault at a time.
    assert stop["at"] >= pause["healed_at"], faults
    assert all(f["verified"] for f in faults), faults
