"""Collected data survives a save and load unchanged: `harness check` judges the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.collected import Collected, SecondConsumerData
from harness.errors import ConfigError


def sample() -> Collected:
    return Collected(
        ops=[{"ok": True, "index": 0}], source=[{"id": 1}], replica=[{"id": 1}],
        published=[], deliveries=[], dead_letters=[], broker_dead_letters=None,
        faults=[], faults_planned=0, converged_after_s=0.25, converge_timeout_s=30.0,
        settle_s=1.0, integrity={"resync": "partial"},
        second=SecondConsumerData(replica=[{"id": 1}], deliveries=[], initial_sync=True))


def test_round_trip(tmp_path: Path) -> None:
    original = sample()
    original.save(tmp_path)
    assert Collected.load(tmp_path) == original


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    sample().save(tmp_path)
    (tmp_path / "deliveries.json").unlink()
    with pytest.raises(ConfigError, match=r"deliveries\.json"):
        Collected.load(tmp_path)


def test_a_malformed_file_is_named(tmp_path: Path) -> None:
    sample().save(tmp_path)
    (tmp_path / "source.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"source\.json"):
        Collected.load(tmp_path)
