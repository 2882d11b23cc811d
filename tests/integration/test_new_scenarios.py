"""publisher_crash and full_resync_under_load on real RabbitMQ and service processes: they
pass on the correct services, and what each claims to exercise really happened (the kills
landed under load, the events after the export's high-water mark were lost from the queue
and still processed exactly once)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from harness.checkers.acknowledgement import committed_without_ack
from harness.collected import Collected
from harness.contract.outcomes import FIRST_PROCESSING
from harness.results import ScenarioResult
from harness.session import run_scenarios, select_scenarios
from harness.settings import RunSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20261130


def run_one(name: str, root: Path) -> ScenarioResult:
    result, _ = run_scenarios(select_scenarios([name]), RunSettings(seed=SEED,
                                                                    report_root=root))
    return result.scenarios[0]


def test_publisher_crash(leak_check: Path) -> None:
    scenario = run_one("publisher_crash", leak_check)
    assert scenario.verdict == "pass", scenario.first_failure()
    kills = scenario.faults
    assert len(kills) == 3 and all(f["verified"] for f in kills)
    assert all("exited with status -9" in f["evidence"] for f in kills)
    collected = Collected.load(Path(scenario.report_dir))
    failed = [op for op in collected.ops if not op["ok"]]
    # Writes failed while the publisher was down, and the load went on after each kill.
    refused = [op for op in failed if "ConnectError" in op.get("error", "")]
    assert refused and not any(op["indeterminate"] for op in refused)
    assert max(op["index"] for op in collected.ops if op["ok"]) > \
        max(op["index"] for op in refused)
    # Whether or not a kill fell between a commit and its answer, every event the source
    # holds is explained by a write and processed by the consumer.
    check = committed_without_ack(collected.ops, collected.published, collected.deliveries)
    assert check.ok, check.details


def test_full_resync_under_load(leak_check: Path) -> None:
    scenario = run_one("full_resync_under_load", leak_check)
    assert scenario.verdict == "pass", scenario.first_failure()
    (fault,) = scenario.faults
    assert fault["verified"], fault["evidence"]
    lost = fault["lost_from_queue"]
    mark, boundary = lost["high_water_mark"], lost["boundary"]
    assert lost["mark_before_resync"] <= mark < boundary
    above = set(lost["above_mark"])
    assert above and all(mark < seq <= boundary for seq in above)
    assert fault["resync_report"]["caught_up_to"] >= max(above)
    # The backlog lost at or below the mark came in with the export; the events the queue
    # lost above it were processed exactly once all the same.
    assert {d["sequence"] for d in lost["discarded"]} - above
    collected = Collected.load(Path(scenario.report_dir))
    sequence = {e["event_id"]: e["sequence"] for e in collected.published}
    first = Counter(sequence[d["event_id"]] for d in collected.deliveries
                    if d["outcome"] in FIRST_PROCESSING and d["event_id"] in sequence)
    assert {seq: first[seq] for seq in above} == dict.fromkeys(above, 1)
