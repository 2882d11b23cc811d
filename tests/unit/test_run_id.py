"""Two runs started in the same second with the same seed get folders of their own."""

from __future__ import annotations

from pathlib import Path

from harness.session import claim_run_id


def test_first_claim_takes_the_plain_id(tmp_path: Path) -> None:
    assert claim_run_id(tmp_path, "20261130-080000-s7") == "20261130-080000-s7"
    assert (tmp_path / "20261130-080000-s7").is_dir()


def test_a_taken_id_gets_a_suffix(tmp_path: Path) -> None:
    first = claim_run_id(tmp_path, "20261130-080000-s7")
    second = claim_run_id(tmp_path, "20261130-080000-s7")
    third = claim_run_id(tmp_path, "20261130-080000-s7")
    assert (first, second, third) == ("20261130-080000-s7", "20261130-080000-s7-2",
                                      "20261130-080000-s7-3")
