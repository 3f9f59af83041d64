"""Verify a channel ledger from its genesis block, trusting nothing but the genesis block.

What the regulator runs (paper §3, audit module; architecture §3): read the raw block files
without the node's index or recovery, and for every block recompute the data hash and the hash
chain, check the orderer signatures against the channel's BlockValidation policy, re-validate
every transaction (signatures, endorsement policies including key-level ones, MVCC) against a
world state rebuilt from scratch (values and key metadata), and compare the recorded validation codes with the recomputed ones. The first
discrepancy names its block. The rebuilt state's hash can then be compared with a node's own.

A ledger joined from a snapshot (docs/backup.md) holds no blocks before it: it is verified from
the snapshot on, trusting the snapshot kept in its folder (its hashes checked again) instead of a
genesis block; the report's `first_block` says where verification began.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fabric_protos.common import common_pb2

from medalliance.database_url import DatabaseUrl
from medalliance.errors import MedallianceError, NotFound
from medalliance.ledger.block import (
    METADATA_SLOTS,
    TRANSACTIONS_FILTER,
    data_hash,
    parse_block,
    transactions_filter,
    verify_chain_link,
)
from medalliance.ledger.block_signature import block_time
from medalliance.ledger.block_store import read_block_records
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.config_update import check_config_transaction, is_config_block
from medalliance.ledger.snapshot import SNAPSHOT_FOLDER, read_snapshot
from medalliance.ledger.state import StateReader, TxWrites
from medalliance.ledger.tx import parse_envelope
from medalliance.ledger.validation import VALID, NamespacePolicy, validate_block
from medalliance.ledger.world_state import (
    SQLITE_FILE,
    WorldState,
    open_state,
    recorded_location,
)


@dataclass(frozen=True, slots=True)
class BadBlock:
    number: int
    reason: str


@dataclass(frozen=True, slots=True)
class LedgerReport:
    """The verdict on one ledger: intact when `bad` is None."""

    path: Path
    channel_id: str
    blocks: int
    txs: int
    valid_txs: int
    state_hash: str  # of the world state rebuilt from the blocks
    node_state_matches: bool | None  # the node's own state.db agrees (None: none found)
    bad: BadBlock | None
    first_block: int = 0  # > 0: verified from the snapshot the ledger was joined from

    @property
    def intact(self) -> bool:
        return self.bad is None and self.node_state_matches is not False


def find_ledgers(root: Path) -> list[Path]:
    """Every ledger directory (one holding `blocks/`) at or under `root`, sorted."""
    if not root.exists():
        raise NotFound(f"{root} does not exist")
    if (root / "blocks").is_dir():
        return [root]
    found = sorted(p.parent for p in root.rglob("blocks") if p.is_dir())
    if not found:
        raise NotFound(f"no ledger under {root}: expected a directory holding blocks/")
    return found


# The committed endorsement policy of a contract namespace in a given state (the contract layer
# knows where definitions live; the caller passes that knowledge in).
DefinitionLookup = Callable[[StateReader, str], NamespacePolicy | None]


def verify_ledger(
    ledger_dir: Path,
    definitions: DefinitionLookup,
    on_block: Callable[[int], None] | None = None,
    node_state_database: DatabaseUrl | None = None,
) -> LedgerReport:
    """Verify one ledger directory; reads it only, never repairs or changes it.

    The blocks are replayed into a scratch SQLite state; its hash is compared with the node's
    own state where the ledger folder says it lives (SQLite beside the blocks, or PostgreSQL:
    `node_state_database` then overrides the recorded URL, e.g. to add a password).
    """
    scratch = Path(tempfile.mkdtemp(prefix="medalliance-verify-"))
    try:
        state = open_state(None, sqlite_path=scratch / SQLITE_FILE, schema="")
        try:
            return _verify(ledger_dir, state, definitions, on_block, node_state_database)
        finally:
            state.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _verify(
    ledger_dir: Path,
    state: WorldState,
    definitions: DefinitionLookup,
    on_block: Callable[[int], None] | None,
    node_state_database: DatabaseUrl | None,
) -> LedgerReport:
    counts = {"blocks": 0, "txs": 0, "valid": 0}
    channel_id = "?"
    bad: BadBlock | None = None
    committed: set[str] = set()
    config: ChannelConfig | None = None
    previous: common_pb2.BlockHeader | bytes | None = None
    first = 0
    if (ledger_dir / SNAPSHOT_FOLDER).is_dir():
        try:
            snapshot = read_snapshot(ledger_dir / SNAPSHOT_FOLDER)
        except MedallianceError as exc:
            return _report(ledger_dir, "?", counts, state, BadBlock(0, str(exc)), None)
        state.import_rows(snapshot.state)
        committed.update(tx_id for tx_id, _ in snapshot.txs)
        config = ChannelConfig.from_block(parse_block(snapshot.config_block))
        channel_id = config.channel_id
        first = snapshot.metadata.last_block_number + 1
        previous = bytes.fromhex(snapshot.metadata.last_block_hash)
    for number, record in enumerate(_records(ledger_dir), start=first):
        if isinstance(record, BadBlock):
            bad = BadBlock(number, record.reason)
            break
        try:
            block = parse_block(record)
            if int(block.header.number) != number:
                raise _Bad(f"block number {block.header.number} where {number} was expected")
            _check_layout(block)
            if config is None:
                if bytes(block.header.data_hash) != data_hash([bytes(d) for d in block.data.data]):
                    raise _Bad("data hash of the genesis block does not match its contents")
                config = ChannelConfig.from_block(block)
                channel_id = config.channel_id
                state.apply_block(0, [])  # the genesis block writes no state
            else:
                assert previous is not None
                config = _check_block(
                    block, previous, config, state, definitions, committed, counts
                )
        except _Bad as exc:
            bad = BadBlock(number, str(exc))
            break
        except MedallianceError as exc:
            bad = BadBlock(number, str(exc))
            break
        previous = block.header
        counts["blocks"] += 1
        if on_block is not None:
            on_block(number)
    if config is None and bad is None:
        bad = BadBlock(0, "the ledger holds no genesis block")
    matches = _node_state_matches(ledger_dir, state, node_state_database) if bad is None else None
    return _report(ledger_dir, channel_id, counts, state, bad, matches, first)


def _report(
    ledger_dir: Path,
    channel_id: str,
    counts: dict[str, int],
    state: WorldState,
    bad: BadBlock | None,
    node_state_matches: bool | None,
    first_block: int = 0,
) -> LedgerReport:
    return LedgerReport(
        path=ledger_dir,
        channel_id=channel_id,
        blocks=counts["blocks"],
        txs=counts["txs"],
        valid_txs=counts["valid"],
        state_hash=state.state_hash().hex(),
        node_state_matches=node_state_matches,
        bad=bad,
        first_block=first_block,
    )


class _Bad(Exception):
    pass


UNUSED_SLOTS = tuple(
    common_pb2.BlockMetadataIndex.Value(name) for name in ("LAST_CONFIG", "ORDERER", "COMMIT_HASH")
)


def _records(ledger_dir: Path) -> Iterator[bytes | BadBlock]:
    try:
        yield from read_block_records(ledger_dir / "blocks")
    except MedallianceError as exc:
        yield BadBlock(-1, str(exc))


def _check_block(
    block: common_pb2.Block,
    previous: common_pb2.BlockHeader | bytes,
    config: ChannelConfig,
    state: WorldState,
    definitions: DefinitionLookup,
    committed: set[str],
    counts: dict[str, int],
) -> ChannelConfig:
    """Check one block (after `previous`: its header, or a snapshot's last block hash); the
    configuration in force after it."""
    if isinstance(previous, bytes):
        problem = (
            None
            if bytes(block.header.previous_hash) == previous
            else "previous hash does not match the last block hash of the snapshot"
        )
        if problem is None and bytes(block.header.data_hash) != data_hash(
            [bytes(d) for d in block.data.data]
        ):
            problem = f"data hash of block {block.header.number} does not match its transactions"
    else:
        problem = verify_chain_link(previous, block)
    if problem is not None:
        raise _Bad(problem)
    # Every signature present must verify, not just a quorum of them: an auditor treats a
    # broken signature as tampering even where the quorum would still be met.
    problem = config.certificate_problem(block)
    if problem is not None:
        raise _Bad(f"commit certificate: {problem}")

    if is_config_block(block):
        return _check_config_block(block, config, state, committed, counts)
    result = validate_block(
        block,
        config=config,
        policy_for=lambda namespace: definitions(state, namespace),
        state=state,
        committed_txs=committed.intersection,
    )
    recorded = transactions_filter(block)
    # An ordering node stores blocks as it cut them, with no codes: re-validation still runs.
    if recorded and tuple(recorded) != result.codes:
        first = next(
            i
            for i in range(max(len(recorded), len(result.codes)))
            if i >= len(recorded) or i >= len(result.codes) or recorded[i] != result.codes[i]
        )
        raise _Bad(f"recorded validation code of transaction {first} does not match re-validation")
    state.apply_block(
        int(block.header.number),
        [
            TxWrites(t.tx_num, t.tx_id, t.timestamp_ms, t.writes, t.metadata)
            for t in result.txs
            if t.code == VALID
        ],
    )
    committed.update(t.tx_id for t in result.txs if t.tx_id)
    counts["txs"] += len(result.txs)
    counts["valid"] += sum(1 for t in result.txs if t.code == VALID)
    return config


def _check_config_block(
    block: common_pb2.Block,
    config: ChannelConfig,
    state: WorldState,
    committed: set[str],
    counts: dict[str, int],
) -> ChannelConfig:
    """A config update: valid if its admins' signatures and result check out against the
    configuration before it; the recorded code must agree."""
    envelope = bytes(block.data.data[0])
    try:
        new = check_config_transaction(config, envelope, at=block_time(block))
        valid = True
    except MedallianceError:
        valid = False
    recorded = transactions_filter(block)
    if recorded and (recorded[0] == VALID) != valid:
        raise _Bad("recorded validation code of the config transaction does not match")
    state.apply_block(int(block.header.number), [])
    committed.add(parse_envelope(envelope).header.tx_id)
    counts["txs"] += 1
    counts["valid"] += int(valid)
    return ChannelConfig.from_config(new, config.channel_id) if valid else config


def _check_layout(block: common_pb2.Block) -> None:
    """Fabric's five metadata slots, with nothing where medalliance writes nothing."""
    slots = block.metadata.metadata
    if len(slots) != METADATA_SLOTS:
        raise _Bad(f"block has {len(slots)} metadata slots instead of {METADATA_SLOTS}")
    for index in UNUSED_SLOTS:
        if slots[index]:
            raise _Bad(f"metadata slot {index} holds data; medalliance never writes it")
    if len(slots[TRANSACTIONS_FILTER]) not in (0, len(block.data.data)):
        raise _Bad("the validation codes do not match the number of transactions")


def _node_state_matches(
    ledger_dir: Path, rebuilt: WorldState, override: DatabaseUrl | None
) -> bool | None:
    location = recorded_location(ledger_dir, override)
    if location.url is None and not (ledger_dir / SQLITE_FILE).exists():
        return None
    node_state = open_state(
        location.url, sqlite_path=ledger_dir / SQLITE_FILE, schema=location.schema
    )
    try:
        if node_state.savepoint != rebuilt.savepoint:
            return False
        return node_state.state_hash() == rebuilt.state_hash()
    finally:
        node_state.close()
