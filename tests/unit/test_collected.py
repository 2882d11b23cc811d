"""Collected data survives a save and load unchanged: `harness check` judges the same."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from harness.collected import Collected, ConsumerData, ConsumerObservation
from harness.errors import ConfigError

OBSERVED = ConsumerObservation(replica_db=[{"id": 1, "deleted": False}], samples=[],
                               sample_reads=[0.5], sampler={"reads": 1}, queue=None,
                               queue_error="gone", resyncs=[{"kind": "full"}])


def sample() -> Collected:
    return Collected(
        ops=[{"ok": True, "index": 0}], source=[{"id": 1}], replica=[{"id": 1}],
        published=[], deliveries=[], dead_letters=[], broker_dead_letters=None,
        faults=[], faults_planned=0, converged_after_s=0.25, converge_timeout_s=30.0,
        settle_s=1.0, integrity={"resync": "partial"},
        other_consumers={
            "consumer2": ConsumerData(replica=[{"id": 1}], deliveries=[], initial_sync=True,
                                      observed=OBSERVED, joined_at=12.5),
            "consumer3": ConsumerData(replica=[], deliveries=[{"id": 1}], initial_sync=False)})


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


def test_a_run_stored_with_one_second_consumer_loads_it_as_consumer2(tmp_path: Path) -> None:
    # The format before any number of consumers: a "second" field, stored as second.json.
    legacy = sample()
    second = legacy.other_consumers["consumer2"]
    legacy_fields = {k: v for k, v in asdict(second).items() if k != "joined_at"}
    Collected(**{**legacy.__dict__, "other_consumers": {}}).save(tmp_path)
    (tmp_path / "other_consumers.json").unlink()
    (tmp_path / "second.json").write_text(json.dumps(legacy_fields))
    loaded = Collected.load(tmp_path)
    assert list(loaded.other_consumers) == ["consumer2"]
    assert loaded.other_consumers["consumer2"] == ConsumerData(
        replica=[{"id": 1}], deliveries=[], initial_sync=True, observed=OBSERVED)


def test_a_run_stored_with_no_other_consumer_loads_none(tmp_path: Path) -> None:
    Collected(**{**sample().__dict__, "other_consumers": {}}).save(tmp_path)
    (tmp_path / "other_consumers.json").unlink()  # as stored before the field existed
    assert Collected.load(tmp_path).other_consumers == {}


def test_other_consumers_must_be_an_object_by_key(tmp_path: Path) -> None:
    sample().save(tmp_path)
    (tmp_path / "other_consumers.json").write_text("[]")
    with pytest.raises(ConfigError, match=r"other_consumers\.json.*ConsumerData by name"):
        Collected.load(tmp_path)
