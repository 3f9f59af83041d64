"""Checkpointers: where an event listener records how far it got, to resume after a restart.

Same model as the Node client's `checkpointers.inMemory()` / `checkpointers.file(path)`
(protocol doc §3.5): the state is the next block to read and, within it, the last transaction
whose event was handled. A request made from a checkpoint starts at that block and asks the
server to skip events up to and including that transaction, so no event is lost or handled
twice. The file format is the Node client's (`{"blockNumber": n, "transactionId": "..."}`), so
a Python and a Node listener can take over from each other.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Protocol

from medalliance.errors import InvalidArgument
from medalliance.sdk.events import ChaincodeEvent


class Checkpointer(Protocol):
    """What `Network.get_chaincode_events(checkpoint=...)` reads to choose where to start."""

    @property
    def block_number(self) -> int | None: ...

    @property
    def transaction_id(self) -> str | None: ...


class InMemoryCheckpointer:
    """A checkpoint kept for the life of the process: resumes a stream after a dropped connection."""

    def __init__(self) -> None:
        self._block_number: int | None = None
        self._transaction_id: str | None = None

    @property
    def block_number(self) -> int | None:
        """The block to resume from, or None before anything was checkpointed."""
        return self._block_number

    @property
    def transaction_id(self) -> str | None:
        """The last transaction handled within `block_number`, or None for the whole block."""
        return self._transaction_id

    def checkpoint_block(self, block_number: int) -> None:
        """Record that every event of `block_number` was handled: resume at the next block."""
        self.checkpoint_transaction(block_number + 1, None)

    def checkpoint_transaction(self, block_number: int, transaction_id: str | None) -> None:
        """Record that events up to `transaction_id` in `block_number` were handled."""
        if block_number < 0:
            raise InvalidArgument(f"a checkpoint block is 0 or more, not {block_number}")
        self._block_number = block_number
        self._transaction_id = transaction_id
        self._saved()

    def checkpoint_chaincode_event(self, event: ChaincodeEvent) -> None:
        """Record that `event` was handled; call it after handling, never before."""
        self.checkpoint_transaction(event.block_number, event.transaction_id)

    def _saved(self) -> None:
        """Hook for persistent checkpointers: the state just changed."""


class FileCheckpointer(InMemoryCheckpointer):
    """A checkpoint kept in a JSON file, rewritten atomically on every change.

    The file is read when the checkpointer is made (and created when missing), so a restarted
    listener resumes where the last one stopped. A crash during a write leaves the previous
    checkpoint intact: the new state goes to a temporary file in the same folder, is synced,
    then renamed over the old one. Raises `InvalidArgument` when the file holds something else.
    """

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)
        if self.path.exists():
            self._block_number, self._transaction_id = _read_state(self.path)
        else:
            self._saved()

    def _saved(self) -> None:
        state: dict[str, int | str] = {}
        if self._block_number is not None:
            state["blockNumber"] = self._block_number
        if self._transaction_id is not None:
            state["transactionId"] = self._transaction_id
        _write_atomically(self.path, json.dumps(state).encode("utf-8"))


def resume_position(
    start_block: int | None, after_transaction_id: str | None, checkpoint: Checkpointer | None
) -> tuple[int | None, str | None]:
    """Where a stream starts: (block or None for the next commit, transaction to skip past).

    A checkpoint that holds a block wins over the explicit arguments, as in the Node client, so
    the same code starts fresh the first time and resumes every time after.
    """
    if checkpoint is not None and checkpoint.block_number is not None:
        return checkpoint.block_number, checkpoint.transaction_id
    return start_block, after_transaction_id


def _read_state(path: Path) -> tuple[int | None, str | None]:
    try:
        state = json.loads(path.read_bytes() or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"checkpoint file {path} is not JSON; delete it to restart") from exc
    if not isinstance(state, dict):
        raise InvalidArgument(f"checkpoint file {path} does not hold a JSON object")
    block_number = state.get("blockNumber")
    transaction_id = state.get("transactionId")
    if block_number is not None and (
        not isinstance(block_number, int) or isinstance(block_number, bool) or block_number < 0
    ):
        raise InvalidArgument(f"checkpoint file {path}: blockNumber must be a block number")
    if transaction_id is not None and not isinstance(transaction_id, str):
        raise InvalidArgument(f"checkpoint file {path}: transactionId must be a string")
    return block_number, transaction_id


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)  # atomic on one file system: the old or the new, never half
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk; not possible on Windows.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
