"""Checkpointers record how far a listener got, and a file checkpoint survives restarts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from medalliance.errors import InvalidArgument
from medalliance.sdk import ChaincodeEvent, FileCheckpointer, InMemoryCheckpointer
from medalliance.sdk.checkpoint import resume_position

EVENT = ChaincodeEvent(
    block_number=7,
    transaction_id="tx7b",
    chaincode_name="basic",
    event_name="AssetCreated",
    payload=b"{}",
)


def test_a_new_checkpoint_holds_no_position() -> None:
    checkpoint = InMemoryCheckpointer()
    assert (checkpoint.block_number, checkpoint.transaction_id) == (None, None)


def test_a_handled_event_resumes_after_its_transaction() -> None:
    checkpoint = InMemoryCheckpointer()
    checkpoint.checkpoint_chaincode_event(EVENT)
    assert (checkpoint.block_number, checkpoint.transaction_id) == (7, "tx7b")


def test_a_handled_block_resumes_at_the_next_block() -> None:
    checkpoint = InMemoryCheckpointer()
    checkpoint.checkpoint_chaincode_event(EVENT)
    checkpoint.checkpoint_block(7)
    assert (checkpoint.block_number, checkpoint.transaction_id) == (8, None)


def test_a_negative_block_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        InMemoryCheckpointer().checkpoint_transaction(-1, None)


def test_a_file_checkpoint_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "listener" / "checkpoint.json"
    first = FileCheckpointer(path)
    first.checkpoint_chaincode_event(EVENT)
    reopened = FileCheckpointer(path)
    assert (reopened.block_number, reopened.transaction_id) == (7, "tx7b")
    reopened.checkpoint_block(7)
    assert (FileCheckpointer(str(path)).block_number, FileCheckpointer(path).transaction_id) == (
        8,
        None,
    )


def test_the_file_format_is_the_node_clients(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    checkpoint = FileCheckpointer(path)
    assert json.loads(path.read_text()) == {}  # created at once, as the Node client does
    checkpoint.checkpoint_chaincode_event(EVENT)
    assert json.loads(path.read_text()) == {"blockNumber": 7, "transactionId": "tx7b"}
    path.write_text('{"blockNumber": 12}')
    assert (FileCheckpointer(path).block_number, FileCheckpointer(path).transaction_id) == (
        12,
        None,
    )


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    checkpoint = FileCheckpointer(tmp_path / "checkpoint.json")
    for block in range(5):
        checkpoint.checkpoint_block(block)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]


def test_a_failed_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoint.json"
    FileCheckpointer(path).checkpoint_chaincode_event(EVENT)
    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        FileCheckpointer(path).checkpoint_block(7)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.json"]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("not json", id="not JSON"),
        pytest.param("[1, 2]", id="not an object"),
        pytest.param('{"blockNumber": -1}', id="a negative block"),
        pytest.param('{"blockNumber": "7"}', id="a block number as text"),
        pytest.param('{"blockNumber": true}', id="a boolean block number"),
        pytest.param('{"transactionId": 7}', id="a numeric transaction id"),
    ],
)
def test_a_broken_checkpoint_file_is_a_typed_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_text(content)
    with pytest.raises(InvalidArgument, match="checkpoint file"):
        FileCheckpointer(path)


def test_an_empty_checkpoint_file_is_a_fresh_start(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.json"
    path.write_bytes(b"")
    assert FileCheckpointer(path).block_number is None


def _at(block: int | None, tx: str | None) -> InMemoryCheckpointer:
    checkpoint = InMemoryCheckpointer()
    if block is not None:
        checkpoint.checkpoint_transaction(block, tx)
    return checkpoint


@pytest.mark.parametrize(
    ("start_block", "after", "checkpoint", "expected"),
    [
        pytest.param(None, None, None, (None, None), id="nothing given starts at the next commit"),
        pytest.param(5, "tx", None, (5, "tx"), id="explicit arguments are used as given"),
        pytest.param(5, None, _at(None, None), (5, None), id="an empty checkpoint falls back"),
        pytest.param(5, "x", _at(9, "tx9"), (9, "tx9"), id="a checkpoint wins over arguments"),
        pytest.param(None, "x", _at(9, None), (9, None), id="a block checkpoint skips nothing"),
    ],
)
def test_where_a_stream_resumes(
    start_block: int | None,
    after: str | None,
    checkpoint: InMemoryCheckpointer | None,
    expected: tuple[int | None, str | None],
) -> None:
    assert resume_position(start_block, after, checkpoint) == expected
