"""`harness bench integrity|resync` options: sizes and divergent counts from --rows and --k,
and arguments that cannot measure anything refused before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import cli
from reference_services.bench import integrity as integrity_bench


def test_integrity_takes_rows_and_k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}

    def fake_run(sizes: list[int], divergent: list[int], work_dir: Path) -> dict[str, Any]:
        asked.update(sizes=sizes, divergent=divergent)
        return {"fanout": 16, "first_level": 256, "verify_repeats": 3, "sizes": []}

    monkeypatch.setattr(integrity_bench, "run_integrity_bench", fake_run)
    assert cli.main(["bench", "integrity", "--rows", "1_000", "--k", "2,30",
                     "--report-dir", str(tmp_path)]) == 0
    assert asked == {"sizes": [1000], "divergent": [2, 30]}


@pytest.mark.parametrize(("argv", "message"), [
    (["resync", "--rate", "0"], "--rate: 0 updates per second cannot load anything"),
    (["resync", "--k", "10,x"], "--k: expected comma-separated integers, got '10,x'"),
    (["integrity", "--k", "many"], "--k: expected comma-separated integers, got 'many'"),
])
def test_arguments_that_measure_nothing_are_refused_before_anything_starts(
        argv: list[str], message: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", *argv, "--report-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
