"""What harness explore stores: drawn examples as scenario files, read back unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.brokers import capabilities as caps
from harness.explore.schedule import Example, examples, explored_actions
from harness.explore.store import ExampleStore, replay_command, write_minimal
from harness.scenario_file import load_file

ACTIONS = explored_actions(caps.ALL)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_a_stored_example_reads_back_equal(tmp_path_factory: pytest.TempPathFactory,
                                           data: st.DataObject) -> None:
    example = data.draw(examples(ACTIONS))
    store = ExampleStore(tmp_path_factory.mktemp("store"))
    store.save(example)
    store.save(example)  # the same example is one file
    assert [e.key() for e in store.load()] == [example.key()]


def test_a_discarded_example_is_gone(tmp_path: Path) -> None:
    store = ExampleStore(tmp_path)
    kept, gone = Example(120, 8, ()), Example(150, 8, ())
    store.save(kept)
    store.save(gone)
    store.discard(gone)
    assert [e.key() for e in store.load()] == [kept.key()]


def test_a_file_that_no_longer_reads_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "old.toml").write_text('name = "explore"\ndescription = "x"\n'
                                       '[[faults]]\naction = "gone"\ntarget = "consumer"\n'
                                       'at_s = 1.0\n')
    assert ExampleStore(tmp_path).load() == []


def test_the_minimal_file_is_a_scenario_file_under_its_header(tmp_path: Path) -> None:
    example = Example(120, 8, ())
    path = write_minimal(tmp_path, example, ["Failing checks: effect_once", "Replay: x"])
    text = path.read_text()
    assert text.startswith("# Failing checks: effect_once\n# Replay: x\n\n")
    assert Example.from_scenario(load_file(path)) == example


def test_replay_command_names_only_what_differs_from_the_defaults() -> None:
    assert replay_command(Path("m.toml"), "none", 3, "rabbitmq", "sqlite") == \
        "harness run --scenario-file m.toml --seed 3"
    assert replay_command(Path("m.toml"), "no_dedupe", 3, "kafka", "postgres") == \
        ("harness run --scenario-file m.toml --seed 3 --variant no_dedupe --broker kafka "
         "--db postgres")
