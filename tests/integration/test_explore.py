"""`harness explore` on real RabbitMQ and real service processes, kept cheap: a failing
schedule stored by an earlier search (explore-db) is run first, confirmed by a rerun and
written as the minimal case; the written file then fails as a scenario file with the
variant and passes without it. Drawing and shrinking are covered by
tests/unit/test_explore.py against fakes; their real cost is measured in docs/explore.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.contract.crash_points import CONSUMER_BEFORE_COMMIT
from harness.explore.schedule import Example
from harness.explore.search import STEADY_RERUNS
from harness.explore.store import ExampleStore
from harness.scenario import FaultStep

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.usefixtures("keep_sigterm_handler")]

SEED = 1
VARIANT = "ack_before_commit"
# The consumer killed just before its commit: with acks sent on receipt, the batch it held
# is lost for good. The shortest load a search draws, as its proof search shrank it to.
KILLED_BEFORE_COMMIT = Example(120, 4, (FaultStep(f"crash_point:{CONSUMER_BEFORE_COMMIT}",
                                                  "consumer", 1.0),))



def test_a_stored_failure_is_confirmed_written_and_replays(
        leak_check: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ExampleStore(leak_check / "explore-db" / f"rabbitmq-{VARIANT}").save(KILLED_BEFORE_COMMIT)
    code = cli.main(["explore", "--variant", VARIANT, "--budget", "2", "--seed", str(SEED),
                     "--runtime", "processes", "--report-dir", str(leak_check)])
    out = capsys.readouterr().out
    assert code == cli.EXIT_FAIL, out
    (minimal,) = leak_check.glob("explore/*/minimal.toml")
    text = minimal.read_text()
    replay = f"harness run --scenario-file {minimal} --seed {SEED} --variant {VARIANT}"
    assert f"# Replay: {replay}" in text and f"replay: {replay}" in out
    assert "# Failing checks: " in text and "no_lost_updates" in text
    summary = json.loads((minimal.parent / "explore.json").read_text())
    # Failed, confirmed, and failed every steadiness rerun.
    assert [r["failed"] != [] for r in summary["runs"]] == [True] * (2 + STEADY_RERUNS)
    assert summary["steady"] is True
    assert "# Steady: it failed 3 more runs in a row, each on a broker of its own" in text
    assert summary["flaky"] == [] and summary["minimal"] == str(minimal)
    # The run and its confirmation borrowed the broker kept for the search, each a
    # namespace of its own; the steadiness reruns, like the replays below, started
    # brokers of their own.
    assert summary["kept_broker"] is True
    leases = {history.parent.parent.name: [
        json.loads(line)["namespace"] for line in history.read_text().splitlines()
        if json.loads(line)["kind"] == "broker_lease"]
        for history in sorted(minimal.parent.glob("run-*/explore/history.jsonl"))}
    assert leases == {"run-001": ["run-1"], "run-002": ["run-2"],
                      **{f"run-{n:03d}": [] for n in range(3, 3 + STEADY_RERUNS)}}

    replays = leak_check / "replays"
    assert cli.main(["run", "--scenario-file", str(minimal), "--seed", str(SEED),
                     "--variant", VARIANT, "--runtime", "processes",
                     "--report-dir", str(replays / "variant")]) == cli.EXIT_FAIL
    assert cli.main(["run", "--scenario-file", str(minimal), "--seed", str(SEED),
                     "--runtime", "processes",
                     "--report-dir", str(replays / "correct")]) == cli.EXIT_PASS
