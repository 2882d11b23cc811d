"""Losing a topic's records on Tansu's S3 storage: the batches below the cut go, and the
cut becomes the log start, so readers are told instead of left waiting."""

from __future__ import annotations

import json
from pathlib import Path

from harness.runtime.tansu_node import TansuNode

PARTITION = "clusters/rch/topics/t/partitions/0000000000/"


class FakeS3:
    """The few calls truncate_topic makes, over a dict; `conflicts` writes fail first."""

    def __init__(self, objects: dict[str, bytes], conflicts: int = 0) -> None:
        self.objects = objects
        self.conflicts = conflicts
        self.versions = dict.fromkeys(objects, 0)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def read(self, key: str) -> tuple[bytes, str]:
        return self.objects[key], str(self.versions[key])

    def replace(self, key: str, body: bytes, etag: str) -> bool:
        if self.conflicts:  # someone (the broker) wrote it meanwhile
            self.conflicts -= 1
            state = json.loads(self.objects[key])
            state["high"] += 1
            self.objects[key] = json.dumps(state).encode()
            self.versions[key] += 1
            return False
        assert etag == str(self.versions[key])
        self.objects[key] = body
        self.versions[key] += 1
        return True

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            del self.objects[key]


def batch(offset: int) -> str:
    return f"{PARTITION}records/{offset:020d}.batch"


def node_on(s3: FakeS3, tmp_path: Path) -> TansuNode:
    node = TansuNode("broker", tmp_path, {})
    node.s3 = s3  # type: ignore[assignment]  # the fake stands in for the S3 server
    return node


def test_batches_below_the_cut_go_and_the_cut_becomes_the_log_start(tmp_path: Path) -> None:
    s3 = FakeS3({batch(0): b"", batch(5): b"", batch(9): b"",
                 PARTITION + "watermark.json": b'{"low": null, "high": 12}'})
    assert node_on(s3, tmp_path).truncate_topic("t", {0: 9}) == 2
    assert batch(9) in s3.objects  # at the cut: kept
    assert json.loads(s3.objects[PARTITION + "watermark.json"]) == {"low": 9, "high": 12}


def test_a_conflicting_write_is_retried_and_keeps_what_the_broker_wrote(
        tmp_path: Path) -> None:
    s3 = FakeS3({batch(0): b"", PARTITION + "watermark.json": b'{"low": 0, "high": 4}'},
                conflicts=2)
    assert node_on(s3, tmp_path).truncate_topic("t", {0: 4}) == 1
    # The broker's writes during the retries (high 4 -> 6) survive; the start is the cut.
    assert json.loads(s3.objects[PARTITION + "watermark.json"]) == {"low": 4, "high": 6}


def test_the_log_start_never_moves_back(tmp_path: Path) -> None:
    s3 = FakeS3({PARTITION + "watermark.json": b'{"low": 7, "high": 9}'})
    node_on(s3, tmp_path).truncate_topic("t", {0: 3})
    assert json.loads(s3.objects[PARTITION + "watermark.json"])["low"] == 7
