"""Unit tests for the pure parts of the Kafka side: lag arithmetic, the tap's ledger of
what it read (how it tells a re-read from a lost or replaced log), and how the Tansu node
is configured. No broker runs here (tests/integration/test_kafka_broker.py runs one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.brokers.kafka import lag
from harness.brokers.kafka_client import LogBounds
from harness.brokers.kafka_tap import Gap, Seen, TapLedger, judge_gap
from harness.contract import naming
from harness.errors import SetupError
from harness.runtime.base import Endpoint
from harness.runtime.tansu_node import TansuNode, broker_argv, find_tansu


def test_lag_counts_from_each_position_to_the_log_end() -> None:
    bounds = {0: LogBounds(0, 10), 1: LogBounds(0, 4)}
    assert lag(bounds, {0: 7, 1: 4}) == 3


def test_lag_reads_a_partition_without_position_from_its_log_start() -> None:
    bounds = {0: LogBounds(5, 12), 1: LogBounds(0, 3)}
    assert lag(bounds, {}) == 7 + 3


def test_lag_ignores_positions_outside_the_log() -> None:
    # Before the start: those records are gone, only what the log holds waits. Past the
    # end (a cut log): nothing waits.
    bounds = {0: LogBounds(20, 25), 1: LogBounds(0, 4)}
    assert lag(bounds, {0: 2, 1: 9}) == 5


def test_the_ledger_marks_a_record_read_again_with_the_same_bytes_as_redelivered() -> None:
    ledger = TapLedger()
    assert not ledger.observe(0, 0, "a").redelivered
    assert not ledger.observe(0, 1, "b").redelivered
    again = ledger.observe(0, 0, "a")
    assert again.redelivered and again.lost == ""


def test_the_ledger_sees_a_replaced_log_in_different_bytes_at_a_read_offset() -> None:
    ledger = TapLedger()
    ledger.observe(2, 0, "a")
    ledger.observe(2, 1, "b")
    seen = ledger.observe(2, 0, "new")
    assert not seen.redelivered
    assert "partition 2 offset 0" in seen.lost and "replaced" in seen.lost
    # The old history is gone: the new log's next records are new, not gaps or re-reads.
    assert ledger.observe(2, 1, "new-b") == Seen(redelivered=False, lost="")
    assert ledger.observe(2, 2, "new-c") == Seen(redelivered=False, lost="")


def test_the_ledger_reports_skipped_offsets_to_ask_the_broker_about() -> None:
    ledger = TapLedger()
    ledger.observe(1, 0, "a")
    seen = ledger.observe(1, 5, "f")
    assert seen.skipped == Gap(1, 1, 5, "f") and seen.lost == ""
    assert ledger.observe(1, 6, "g").skipped is None  # the gap is reported once


def test_skipped_offsets_the_broker_holds_no_record_at_are_a_hole_not_a_loss() -> None:
    # Asked from offset 1, the broker answered with offset 5, the record the tap read.
    assert judge_gap(Gap(1, 1, 5, "f"), 0, {5: "f"}) == ""


def test_skipped_offsets_below_a_moved_log_start_are_lost_records() -> None:
    reason = judge_gap(Gap(1, 1, 5, "f"), 3, {5: "f"})
    assert "partition 1 offsets 1..4" in reason and "log now starts at offset 3" in reason


def test_skipped_offsets_followed_by_other_bytes_or_no_answer_are_lost_records() -> None:
    assert "other bytes" in judge_gap(Gap(1, 1, 5, "f"), 0, {5: "new"})
    assert "no record at offset 5" in judge_gap(Gap(1, 1, 5, "f"), 0, {6: "g"})


def test_the_first_record_of_a_partition_may_start_anywhere() -> None:
    # A group resuming from committed offsets starts mid-log: no gap is known.
    assert TapLedger().observe(3, 40, "x").lost == ""


def test_the_ledger_sees_a_log_that_ends_before_what_was_read() -> None:
    ledger = TapLedger()
    for offset in range(10):
        ledger.observe(0, offset, f"d{offset}")
    assert ledger.shrank(0, 10) == ""
    assert ledger.shrank(1, 0) == ""  # nothing read there
    reason = ledger.shrank(0, 3)
    assert "ends at offset 3, before offset 10" in reason
    # Forgotten: reading the new log from its start is neither a gap nor a re-read.
    assert ledger.shrank(0, 3) == ""
    assert ledger.observe(0, 0, "other").lost == ""


def test_a_consumer_group_is_named_after_its_consumer() -> None:
    assert naming.consumer_group("consumer2") == "consumer2"


def test_the_broker_listens_where_told_and_advertises_what_it_is_given() -> None:
    argv = broker_argv(Path("/bin/tansu"), "127.0.0.1:9001",
                       Endpoint("127.0.0.1", 9002), "s3://tansu/")
    assert argv[:2] == ["/bin/tansu", "broker"]
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert options["--listener-url"] == "tcp://127.0.0.1:9001"
    assert options["--advertised-listener-url"] == "tcp://127.0.0.1:9002"
    assert options["--storage-engine"] == "s3://tansu/"


def test_the_bundled_tansu_binary_is_found_and_executable() -> None:
    binary = find_tansu()
    assert binary.name == "tansu" and os.access(binary, os.X_OK)


def test_a_node_ignores_broker_settings_from_its_environment(tmp_path: Path) -> None:
    inherited = {"PATH": "/usr/bin", "LISTENER_URL": "tcp://0.0.0.0:9092",
                 "STORAGE_ENGINE": "postgres://x", "AWS_ENDPOINT": "http://elsewhere"}
    memory = TansuNode("kafka", tmp_path, inherited)
    assert memory.server.env == {"PATH": "/usr/bin"}
    assert "memory://" in memory.server.argv[memory.server.argv.index("--storage-engine") + 1]
    s3 = TansuNode("kafka2", tmp_path, inherited, storage="s3")
    assert s3.s3 is not None and s3.durable
    assert s3.server.env["AWS_ENDPOINT"] == s3.s3.url != "http://elsewhere"
    assert "LISTENER_URL" not in s3.server.env


def test_a_node_advertises_its_listener_unless_told_otherwise(tmp_path: Path) -> None:
    node = TansuNode("kafka", tmp_path, {})
    assert node.advertised == node.listener
    assert node.bootstrap == f"127.0.0.1:{node.listener.port}"


def test_an_unknown_storage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="unknown Tansu storage 'postgres'"):
        TansuNode("kafka", tmp_path, {}, storage="postgres")  # type: ignore[arg-type]
