"""`explore` end to end with a fake system under test: what it writes and keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.explore import session
from harness.explore.schedule import Example
from harness.explore.search import Budget, Outcome
from harness.explore.store import ExampleStore
from harness.scenario import FaultStep
from harness.scenario_file import load_file
from harness.settings import RunSettings

FIXED = Example(150, 6, (FaultStep("pause", "consumer", 1.0, duration_s=1.0),))


class KillFails:
    """A fake system under test: every schedule with a kill loses updates."""

    def __init__(self, _settings: RunSettings, _folder: Path, _runtime: Any, kept: Any,
                 _log: Any) -> None:
        assert kept is None, "asked for a broker per run"
        pass

    def __call__(self, example: Example) -> Outcome:
        if any(step.action == "kill" for step in example.faults):
            return Outcome(("no_lost_updates",), "fail", "3 events never applied",
                           "reports/x")
        return Outcome((), "pass")

    def replayed(self, example: Example) -> Outcome:
        return self(example)


def test_a_failure_is_written_replayable_and_kept(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setattr(session, "ScenarioOracle", KillFails)
    db = ExampleStore(tmp_path / "explore-db" / "rabbitmq-ack_before_commit")
    db.save(FIXED)  # passes now: dropped after the search
    settings = RunSettings(seed=4, variant="ack_before_commit", report_root=tmp_path)
    found = session.explore(settings, Budget(examples=300), lambda _line: None,
                            keep_broker=False)

    assert found.minimal_file is not None and found.replay == (
        f"harness run --scenario-file {found.minimal_file} --seed 4 "
        "--variant ack_before_commit")
    text = found.minimal_file.read_text()
    assert "# Failing checks: no_lost_updates\n#   3 events never applied\n" in text
    assert f"# Replay: {found.replay}\n" in text
    minimal = Example.from_scenario(load_file(found.minimal_file))
    assert [(s.action, s.target) for s in minimal.faults] == [("kill", "consumer")]
    assert [e.key() for e in db.load()] == [minimal.key()]
    summary = json.loads((found.folder / "explore.json").read_text())
    assert summary["minimal"] == str(found.minimal_file)
    assert summary["schedules"] == found.result.examples_tried
    assert summary["runs"][0]["schedule"] == FIXED.describe()
