"""Unit tests for harness.checkers.acknowledgement: events committed at the source
without an acknowledgement must be explained by an unanswered write and replicated."""

from __future__ import annotations

from typing import Any

from harness.checkers.acknowledgement import committed_without_ack, write_kind


def event(seq: int, kind: str, pid: int, version: int) -> dict[str, Any]:
    return {"event_id": f"e{seq}", "type": kind, "aggregate_id": str(pid),
            "version": version, "sequence": seq}


def acked(seq: int, op: str, pid: int) -> dict[str, Any]:
    return {"index": seq, "op": op, "product_id": pid, "ok": True, "event_id": f"e{seq}"}


def unanswered(index: int, op: str, pid: int | None) -> dict[str, Any]:
    return {"index": index, "op": op, "product_id": pid, "ok": False,
            "error": "RemoteProtocolError: Server disconnected", "indeterminate": True}


def refused(index: int, op: str, pid: int | None) -> dict[str, Any]:
    return {"index": index, "op": op, "product_id": pid, "ok": False,
            "error": "ConnectError: refused", "indeterminate": False}


def processed(*seqs: int) -> list[dict[str, Any]]:
    return [{"event_id": f"e{s}", "outcome": "applied"} for s in seqs]


PUBLISHED = [event(1, "ProductUpserted", 1, 1), event(2, "StockAdjusted", 1, 2)]
OPS = [acked(1, "create", 1), acked(2, "stock", 1)]


def test_write_kind_follows_the_event() -> None:
    assert [write_kind(e) for e in (event(1, "ProductUpserted", 1, 1),
                                    event(2, "ProductUpserted", 1, 2),
                                    event(3, "StockAdjusted", 1, 3),
                                    event(4, "ProductDeleted", 1, 4))] == \
        ["create", "update", "stock", "delete"]


def test_a_run_where_nothing_committed_unanswered_says_so() -> None:
    ops = [*OPS, unanswered(3, "update", 1), refused(4, "create", None)]
    result = committed_without_ack(ops, PUBLISHED, processed(1, 2))
    assert result.ok
    assert "no write was committed without an acknowledgement" in result.details
    assert "1 writes got no answer" in result.details


def test_unanswered_writes_that_committed_and_replicated_pass_and_are_named() -> None:
    published = [*PUBLISHED, event(3, "ProductUpserted", 2, 1), event(4, "StockAdjusted", 1, 3)]
    ops = [*OPS, unanswered(3, "create", None), unanswered(4, "stock", 1),
           unanswered(5, "delete", 1)]
    result = committed_without_ack(ops, published, processed(1, 2, 3, 4))
    assert result.ok, result.details
    assert "2 of the 3 writes left without an answer had committed" in result.details
    assert "create of product 2" in result.details


def test_an_unacknowledged_commit_the_consumer_never_processed_fails() -> None:
    published = [*PUBLISHED, event(3, "StockAdjusted", 1, 3)]
    ops = [*OPS, unanswered(3, "stock", 1)]
    result = committed_without_ack(ops, published, processed(1, 2))
    assert not result.ok
    assert "1 events committed at the source without an acknowledgement never reached " \
           "the replica, by the consumer's log (stock of product 1 (v3, seq 3))" \
           in result.details
    assert result.counterexample["not_processed"] == ["e3"]


def test_an_event_no_write_explains_fails() -> None:
    # A write refused before it was sent cannot have committed; nor can one unanswered
    # write explain an event of another product.
    published = [*PUBLISHED, event(3, "ProductUpserted", 1, 3), event(4, "ProductDeleted", 9, 2)]
    ops = [*OPS, refused(3, "update", 1), unanswered(4, "delete", 1)]
    result = committed_without_ack(ops, published, processed(1, 2, 3, 4))
    assert not result.ok
    assert "holds 2 events that neither an acknowledged write returned nor a write left " \
           "without an answer can explain" in result.details
    assert result.counterexample["unexplained"] == ["e3", "e4"]
