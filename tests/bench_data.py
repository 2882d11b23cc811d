"""Bench folders shaped like the ones `harness bench` writes, for the tests of the bench
page: bench.json files copied from real runs (tests/fixtures/bench/), and the pipeline
scenarios' report folder beside them when asked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "bench"
# `harness bench replication --quick --broker rabbitmq`: 3 of its figures miss their target.
REPLICATION = "replication_rabbitmq"
LAG = "lag_kafka"  # `harness bench lag --broker kafka`
PROXY = "proxy_kafka"  # `harness bench proxy --broker kafka`
TAP = "tap"  # `harness bench tap`: no figure against a raw part


def bench_data(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def resync_data() -> dict[str, Any]:
    """bench.json of `harness bench resync`, shaped as reference_services/bench/resync.py
    writes it (figures of a run here, trimmed to one partial size per part)."""
    def part(seconds: float, per_id_ms: float, met: bool) -> dict[str, Any]:
        return {"full": {"seconds": seconds, "rows_per_s": round(100_000 / seconds, 1),
                         "comparison": {"name": "full resync of 100000 rows", "unit": "ms",
                                        "value": seconds * 1000, "raw": 400.0,
                                        "ratio": round(seconds / 0.4, 3),
                                        "target": "<= 3", "met": seconds / 0.4 <= 3}},
                "partial": [{"ids": 100, "seconds": per_id_ms / 10, "changed": 100,
                             "per_id_ms": per_id_ms, "target_ms_per_id": 0.1, "met": met}]}
    return {"rows": 100_000, "raw_bulk_copy_s": 0.4, "full_target": "<= 3",
            "partial_target_ms_per_id": 0.1, "idle": part(1.0, 0.05, True),
            "under_load": {"rate": 200.0, "writes": 2000, **part(1.6, 0.21, False)}}


def bench_folder(root: Path, data: dict[str, Any], pipeline: bool = True) -> Path:
    """A bench folder holding `data` as bench.json, and pipeline/index.html if asked."""
    folder = root / "bench-20261130-084035"
    folder.mkdir(parents=True)
    (folder / "bench.json").write_text(json.dumps(data, indent=2))
    if pipeline:
        (folder / "pipeline").mkdir()
        (folder / "pipeline" / "index.html").write_text("<!DOCTYPE html><title>run</title>")
    return folder
