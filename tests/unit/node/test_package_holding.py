"""A peer's package holding: keeps only what the ledger binds, never swaps a copy, erases by state."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_event_pb2
from tests.unit.contracts.fakes import DictState

from medalliance.errors import InvalidArgument, PreconditionFailed
from medalliance.ledger.state import Write
from medalliance.ledger.validation import VALID, BlockResult, TxResult
from medalliance.node.package_holding import Held, PackageHolding
from medalliance.privacy.envelope import SealedPackage, add_recipients, seal
from medalliance.privacy.keys import RecipientKey, key_id
from medalliance.privacy.record_ledger import NAMESPACE, record_key, version_key

KEYS = {m: ec.generate_private_key(ec.SECP256R1()) for m in ("AMSP", "BMSP", "CMSP")}
MVCC_READ_CONFLICT = 11


def recipient(msp_id: str) -> RecipientKey:
    public = KEYS[msp_id].public_key()
    return RecipientKey(msp_id, key_id(public), public)


def commit(state: DictState, package: SealedPackage, authorised: list[str], erased: bool) -> bytes:
    record = {"authorised": authorised, "holders": authorised, "erased": erased}
    entry = {"digest": package.digest, "attachments": [], "keys": package.key_commitments}
    state.put(NAMESPACE, version_key("R-1", 1), json.dumps(entry).encode())
    value = json.dumps(record).encode()
    state.put(NAMESPACE, record_key("R-1"), value)
    return value


@pytest.fixture
def setup(tmp_path: Path) -> tuple[DictState, PackageHolding, SealedPackage]:
    state = DictState()
    package = seal(b"clinical", record_id="R-1", version=1,
                   recipients=[recipient("AMSP"), recipient("BMSP")])  # fmt: skip
    commit(state, package, ["AMSP", "BMSP"], erased=False)
    return state, PackageHolding("BMSP", tmp_path, lambda: state), package


def test_a_held_copy_is_never_swapped_but_a_committed_grant_extends_it(
    setup: tuple[DictState, PackageHolding, SealedPackage],
) -> None:
    state, holding, package = setup
    holding.keep(Held(package.to_bytes(), ()))
    assert holding.keep(Held(package.to_bytes(), ())) == package  # idempotent
    granted = add_recipients(
        package, "AMSP", {recipient("AMSP").key_id: KEYS["AMSP"]}, [recipient("CMSP")]
    )
    with pytest.raises(InvalidArgument, match="wrapped keys for CMSP"):
        holding.keep(Held(granted.to_bytes(), ()))  # not committed yet
    commit(state, granted, ["AMSP", "BMSP", "CMSP"], erased=False)  # the grant commits it
    holding.keep(Held(granted.to_bytes(), ()))
    assert holding.get(holding.committed("R-1", 1)).sealed == granted.to_bytes()
    # The older copy (still matching every key it has) does not replace the extension.
    assert holding.keep(Held(package.to_bytes(), ())) == granted
    assert holding.get(holding.committed("R-1", 1)).sealed == granted.to_bytes()


def result(*txs: TxResult) -> BlockResult:
    return BlockResult(7, txs)


def test_only_a_valid_committed_erasure_deletes(
    setup: tuple[DictState, PackageHolding, SealedPackage],
) -> None:
    state, holding, package = setup
    holding.keep(Held(package.to_bytes(), ()))
    block = common_pb2.Block()
    event = chaincode_event_pb2.ChaincodeEvent(
        chaincode_id="records",
        event_name="ErasureApproved",
        payload=json.dumps({"patientRef": "ab" * 16, "records": ["R-1"]}).encode(),
    ).SerializeToString()
    event_only = TxResult(0, "t0", VALID, 0, "records", writes=(), event=event)
    erased_value = json.dumps({"authorised": ["AMSP", "BMSP"], "erased": True}).encode()
    invalid = TxResult(1, "t1", MVCC_READ_CONFLICT, 0, "records",
                       writes=(Write(NAMESPACE, record_key("R-1"), erased_value),))  # fmt: skip
    holding.committed_block(block, result(event_only, invalid))
    assert holding.versions_held("R-1") == 1

    value = commit(state, package, ["AMSP", "BMSP"], erased=True)
    valid = dataclasses.replace(
        invalid, code=VALID, writes=(Write(NAMESPACE, record_key("R-1"), value),)
    )
    holding.committed_block(block, result(valid))
    assert holding.versions_held("R-1") == 0
    with pytest.raises(PreconditionFailed, match="record R-1 was erased"):
        holding.keep(Held(package.to_bytes(), ()))


def test_an_erasure_committed_while_no_listener_ran_is_applied_when_reconciled(
    setup: tuple[DictState, PackageHolding, SealedPackage],
) -> None:
    # A crash between a block's state write and its listener, a replay at start-up or a
    # restored backup: the state says erased, the listener never saw the block.
    state, holding, package = setup
    holding.keep(Held(package.to_bytes(), ()))
    assert holding.reconcile() == 0  # nothing erased yet: the copy stays
    assert holding.versions_held("R-1") == 1
    commit(state, package, ["AMSP", "BMSP"], erased=True)
    assert holding.reconcile() == 1
    assert holding.versions_held("R-1") == 0
