"""Key-level (state-based) endorsement at commit: Fabric's rules, one table, real SQLite state.

The contract `cc` needs AND(A, B); key `k` carries its own policy AND(C, A). Each row endorses a
read-write set with some organisations' peers and expects a validation code.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2, policies_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import policy_pb2
from tests.conftest import NOW, Org, make_org

from medalliance.identity.msp import MspManager
from medalliance.identity.policy import SignedData, parse_policy
from medalliance.identity.signing import Signer
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import VALIDATION_PARAMETER, MetadataWrite, TxWrites, Version, Write
from medalliance.ledger.tx import (
    Code,
    new_proposal_response,
    new_signed_proposal,
    new_transaction_payload,
    parse_signed_proposal,
    sign_envelope,
)
from medalliance.ledger.validation import BlockResult, NamespacePolicy, validate_block

VALID = Code.Value("VALID")
FAILURE = Code.Value("ENDORSEMENT_POLICY_FAILURE")
MVCC = Code.Value("MVCC_READ_CONFLICT")
CC_POLICY = "AND('AMSP.peer', 'BMSP.peer')"
KEY_POLICY = "AND('CMSP.peer', 'AMSP.peer')"
TS_MS = int(NOW.timestamp() * 1000) + 60_000


def policy_bytes(dsl: str) -> bytes:
    return bytes(parse_policy(dsl).SerializeToString())


@dataclass
class Channel:
    """What validation needs of a channel: its MSPs (no channel policies are evaluated here)."""

    msps: MspManager
    channel_id: str = "ch"
    application_msp_ids: tuple[str, ...] = ("AMSP", "BMSP", "CMSP")
    orgs: Mapping[str, object] = field(default_factory=dict)

    def evaluate_policy(self, path: str, signed: Sequence[SignedData], *, at: dt.datetime) -> bool:
        raise AssertionError("no channel policy is needed by these transactions")


@dataclass(frozen=True)
class Rw:
    """A read-write set of namespace `cc`: writes (None deletes), metadata (key → policy)."""

    writes: Mapping[str, bytes | None] = field(default_factory=dict)
    metadata: Mapping[str, bytes] = field(default_factory=dict)
    reads: Sequence[str] = ()


@pytest.fixture(scope="module")
def orgs() -> dict[str, Org]:
    return {m: make_org(m) for m in ("AMSP", "BMSP", "CMSP")}


@pytest.fixture(scope="module")
def peers(orgs: dict[str, Org]) -> dict[str, Signer]:
    return {m[0]: org.signer("peer0", ou="peer") for m, org in orgs.items()}


@pytest.fixture(scope="module")
def client(orgs: dict[str, Org]) -> Signer:
    return orgs["AMSP"].signer("User1")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SqliteState]:
    """`k` (with the key policy), `free` (without one), block 1."""
    s = SqliteState.open(tmp_path / "state.db")
    s.apply_block(0, [])
    s.apply_block(
        1,
        [
            TxWrites(
                0,
                "t0",
                0,
                (Write("cc", "k", b"v1"), Write("cc", "free", b"f1")),
                (MetadataWrite("cc", "k", ((VALIDATION_PARAMETER, policy_bytes(KEY_POLICY)),)),),
            )
        ],
    )
    yield s
    s.close()


def envelope(
    client: Signer, peers: dict[str, Signer], rw: Rw, endorsers: str, *, timestamp_ms: int = TS_MS
) -> bytes:
    signed, _ = new_signed_proposal(
        client, channel_id="ch", chaincode="cc", args=[b"f"], nonce=os.urandom(24),
        timestamp_ms=timestamp_ms,
    )  # fmt: skip
    proposal = parse_signed_proposal(signed)
    kv = kv_rwset_pb2.KVRWSet()
    for key in rw.reads:
        kv.reads.add(key=key).version.block_num = 1
    for key, value in rw.writes.items():
        kv.writes.add(key=key, is_delete=value is None, value=value or b"")
    for key, policy in rw.metadata.items():
        kv.metadata_writes.add(key=key).entries.add(name=VALIDATION_PARAMETER, value=policy)
    rwset = rwset_pb2.TxReadWriteSet(
        data_model=rwset_pb2.TxReadWriteSet.DataModel.Value("KV"),
        ns_rwset=[rwset_pb2.NsReadWriteSet(namespace="cc", rwset=kv.SerializeToString())],
    ).SerializeToString()
    responses = [
        new_proposal_response(proposal, peers[e], chaincode_version="1", status=200,
                              message="", payload=b"", rwset=rwset, event=None)
        for e in endorsers
    ]  # fmt: skip
    return sign_envelope(new_transaction_payload(proposal, responses), client)


def validate(
    orgs: dict[str, Org],
    state: SqliteState,
    envelopes: Sequence[bytes],
    contract_policy: str | policies_pb2.SignaturePolicyEnvelope = CC_POLICY,
) -> BlockResult:
    block = common_pb2.Block()
    block.header.number = 2
    block.data.data.extend(envelopes)
    envelope = (
        parse_policy(contract_policy) if isinstance(contract_policy, str) else contract_policy
    )
    policy = policy_pb2.ApplicationPolicy(signature_policy=envelope)
    definition = NamespacePolicy(bytes(policy.SerializeToString()))
    return validate_block(
        block,
        config=Channel(MspManager([o.msp for o in orgs.values()])),
        policy_for=lambda ns: definition if ns == "cc" else None,
        state=state,
        committed_txs=lambda tx_ids: frozenset(),
    )


NEW = policy_bytes("AND('CMSP.peer', 'BMSP.peer')")


@pytest.mark.parametrize(
    ("rw", "endorsers", "code"),
    [
        pytest.param(Rw({"free": b"x"}), "AB", VALID, id="a key without its own policy: the contract's policy"),
        pytest.param(Rw({"free": b"x"}), "A", FAILURE, id="the contract's policy unmet"),
        pytest.param(Rw({"new": b"x"}), "CA", FAILURE, id="a new key: the contract's policy, whoever the key names"),
        pytest.param(Rw({"k": b"x"}), "AB", FAILURE, id="a key with its own policy: the contract's endorsers do not suffice"),
        pytest.param(Rw({"k": b"x"}), "CA", VALID, id="every key written has its own policy: the contract's is not needed"),
        pytest.param(Rw({"k": b"x"}), "C", FAILURE, id="the key's policy unmet"),
        pytest.param(Rw({"k": b"x", "free": b"y"}), "CA", FAILURE, id="one key without its own policy brings the contract's back"),
        pytest.param(Rw({"k": b"x", "free": b"y"}), "CAB", VALID, id="both policies met"),
        pytest.param(Rw({"k": None}), "AB", FAILURE, id="deleting a key needs its policy"),
        pytest.param(Rw({"k": None}), "CA", VALID, id="deleting a key with its policy met"),
        pytest.param(Rw(metadata={"k": NEW}), "AB", FAILURE, id="changing a key's policy needs its current policy"),
        pytest.param(Rw(metadata={"k": NEW}), "CB", FAILURE, id="the new policy's endorsers cannot install it"),
        pytest.param(Rw(metadata={"k": NEW}), "CA", VALID, id="changing a key's policy with the current one met"),
        pytest.param(Rw(metadata={"free": NEW}), "CA", FAILURE, id="giving a key its first policy needs the contract's"),
        pytest.param(Rw(metadata={"free": NEW}), "AB", VALID, id="the contract's endorsers give a key its first policy"),
        pytest.param(Rw(reads=["k"]), "A", FAILURE, id="a read-only transaction needs the contract's policy"),
        pytest.param(Rw(reads=["k"]), "AB", VALID, id="a read-only transaction with the contract's policy met"),
    ],
)  # fmt: skip
def test_key_level_endorsement_rules(
    orgs: dict[str, Org],
    peers: dict[str, Signer],
    client: Signer,
    state: SqliteState,
    rw: Rw,
    endorsers: str,
    code: int,
) -> None:
    result = validate(orgs, state, [envelope(client, peers, rw, endorsers)])
    assert result.codes == (code,), result.txs[0].reason
    if code == FAILURE:
        assert "endorsement policy" in result.txs[0].reason


@pytest.mark.parametrize("timestamp_ms", [2**62, -(2**62)])
def test_a_timestamp_no_time_can_hold_invalidates_its_transaction_not_the_block(
    orgs: dict[str, Org],
    peers: dict[str, Signer],
    client: Signer,
    state: SqliteState,
    timestamp_ms: int,
) -> None:
    """A client stamps its header as it likes (any int64): beyond what a datetime holds, its
    transaction is marked BAD_COMMON_HEADER and the rest of the block commits as ever."""
    hostile = envelope(client, peers, Rw({"free": b"x"}), "AB", timestamp_ms=timestamp_ms)
    honest = envelope(client, peers, Rw({"other": b"y"}), "AB")
    result = validate(orgs, state, [hostile, honest])
    assert result.codes == (Code.Value("BAD_COMMON_HEADER"), VALID)
    assert "out of range" in result.txs[0].reason


def test_a_stricter_contract_policy_applies_to_the_next_block_at_once(
    orgs: dict[str, Org], peers: dict[str, Signer], client: Signer, state: SqliteState
) -> None:
    """Parsed policies are kept per distinct bytes: after an upgrade to a stricter policy, the
    hostile member's transaction endorsed for the old one is refused, and the old policy, if it
    comes back, applies again."""
    tx = envelope(client, peers, Rw({"free": b"x"}), "AB")
    strict = "AND('AMSP.peer', 'BMSP.peer', 'CMSP.peer')"
    assert validate(orgs, state, [tx]).codes == (VALID,)
    assert validate(orgs, state, [tx], contract_policy=strict).codes == (FAILURE,)
    assert validate(orgs, state, [tx]).codes == (VALID,)
    broken = parse_policy("OR('AMSP.peer', 'BMSP.peer')")
    broken.rule.n_out_of.rules[0].signed_by = 7  # no principal 7: Fabric does not compile it
    for _ in range(2):  # the verdict kept for these bytes is the refusal
        assert validate(orgs, state, [tx], contract_policy=broken).codes == (FAILURE,)


def test_a_policy_that_does_not_decode_is_never_satisfied(
    orgs: dict[str, Org], peers: dict[str, Signer], client: Signer, state: SqliteState
) -> None:
    state.apply_block(
        2,
        [
            TxWrites(
                0,
                "t",
                0,
                (),
                (MetadataWrite("cc", "free", ((VALIDATION_PARAMETER, b"\xff\xff"),)),),
            )
        ],
    )
    result = validate(orgs, state, [envelope(client, peers, Rw({"free": b"x"}), "ABC")])
    assert result.codes == (FAILURE,)


@pytest.mark.parametrize(
    ("first", "first_by", "codes"),
    [
        pytest.param(Rw(metadata={"k": NEW}), "CA", (VALID, FAILURE), id="a policy changed earlier in the block"),
        pytest.param(Rw({"k": None}), "CA", (VALID, FAILURE), id="a protected key deleted earlier in the block"),
        pytest.param(Rw(metadata={"k": NEW}), "A", (FAILURE, VALID), id="an invalid earlier change does not count"),
        pytest.param(Rw({"free": None}), "AB", (VALID, VALID), id="deleting a key without a policy changes none"),
    ],
)  # fmt: skip
def test_a_key_whose_policy_changed_earlier_in_the_block_cannot_be_written(
    orgs: dict[str, Org],
    peers: dict[str, Signer],
    client: Signer,
    state: SqliteState,
    first: Rw,
    first_by: str,
    codes: tuple[int, int],
) -> None:
    later = Rw({"k": b"x", "free": b"y"})
    result = validate(
        orgs,
        state,
        [envelope(client, peers, first, first_by), envelope(client, peers, later, "CAB")],
    )
    assert result.codes == codes
    if codes[1] == FAILURE:
        assert "changed by an earlier transaction of this block" in result.txs[1].reason


def test_validation_is_deterministic(
    orgs: dict[str, Org], peers: dict[str, Signer], client: Signer, state: SqliteState
) -> None:
    block = [
        envelope(client, peers, Rw(metadata={"k": NEW}), "CA"),
        envelope(client, peers, Rw({"k": b"x"}), "CA"),
        envelope(client, peers, Rw({"free": b"x"}), "A"),
    ]
    assert validate(orgs, state, block).codes == validate(orgs, state, block).codes


def test_commit_applies_metadata_drops_it_with_the_key_and_ignores_it_for_a_missing_key(
    orgs: dict[str, Org], peers: dict[str, Signer], client: Signer, state: SqliteState
) -> None:
    block = [
        envelope(client, peers, Rw(metadata={"k": NEW}, reads=["k"]), "CA"),
        envelope(client, peers, Rw({"free": None}, metadata={"ghost": NEW}), "AB"),
    ]
    result = validate(orgs, state, block)
    assert result.codes == (VALID, VALID)
    state.apply_block(2, [TxWrites(t.tx_num, t.tx_id, 0, t.writes, t.metadata) for t in result.txs])
    assert state.get_metadata("cc", "k") == {VALIDATION_PARAMETER: NEW}
    versioned = state.get("cc", "k")
    assert versioned is not None
    assert (versioned.value, versioned.version) == (b"v1", Version(2, 0))  # a new version
    assert state.get("cc", "free") is None
    assert state.get_metadata("cc", "free") == {}
    assert state.get_metadata("cc", "ghost") == {}
    # A transaction that read `k` before its policy changed now conflicts (MVCC).
    stale = validate(orgs, state, [envelope(client, peers, Rw({"k": b"z"}, reads=["k"]), "CB")])
    assert stale.codes == (MVCC,)


def test_a_namespace_without_metadata_is_judged_afresh_once_a_key_has_a_policy(
    orgs: dict[str, Org], peers: dict[str, Signer], client: Signer, tmp_path: Path
) -> None:
    # Validation skips the per-key look-ups of a namespace in which no key has metadata at the
    # block's start. Hostile: a policy installed in the block, or by the block before, must
    # still bind the key's next writer.
    state = SqliteState.open(tmp_path / "bare.db")
    state.apply_block(0, [])
    state.apply_block(1, [TxWrites(0, "t0", 0, (Write("cc", "k", b"v1"),), ())])
    assert not state.has_metadata("cc")
    first = validate(
        orgs,
        state,
        [
            envelope(client, peers, Rw(metadata={"k": policy_bytes(KEY_POLICY)}), "AB"),
            envelope(client, peers, Rw({"k": b"x"}), "AB"),
        ],
    )
    assert first.codes == (VALID, FAILURE)
    assert "changed by an earlier transaction of this block" in first.txs[1].reason
    state.apply_block(2, [TxWrites(t.tx_num, t.tx_id, 0, t.writes, t.metadata) for t in first.txs])
    assert state.has_metadata("cc")
    assert not state.has_metadata("other")
    later = [envelope(client, peers, Rw({"k": b"y"}), e) for e in ("AB", "CA")]
    assert validate(orgs, state, later).codes == (FAILURE, VALID)
    state.close()
