"""Commit certificates: a quorum of distinct consenters' PRECOMMITs for the block's header."""

from __future__ import annotations

import datetime as dt

import pytest
from fabric_protos.common import common_pb2
from tests.conftest import NOW, make_org

from medalliance.identity.msp import MspManager
from medalliance.identity.signing import Signer
from medalliance.ledger.block import header_hash, new_block
from medalliance.ledger.commit_certificate import (
    SIGNATURES,
    Consenter,
    certificate_problem,
    precommit_bytes,
    quorum,
    read_certificate,
    signed_bytes,
    write_certificate,
)

ORG = make_org("OrdMSP")
OTHER = make_org("OtherMSP")
MSPS = MspManager([ORG.msp, OTHER.msp])
SIGNERS = [ORG.signer(f"orderer{i}", ou="orderer") for i in range(4)]
CONSENTERS = [
    Consenter(i + 1, f"orderer{i}.example.com", "127.0.0.1", 7050 + i, "OrdMSP", s.serialized_identity)
    for i, s in enumerate(SIGNERS)
]  # fmt: skip


@pytest.mark.parametrize(("n", "q"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 4), (7, 5)])
def test_a_quorum_is_n_plus_f_plus_one_halved_up(n: int, q: int) -> None:
    assert quorum(n) == q


def block_with(signers: list[Signer], *, round: int = 2, signed_round: int | None = None) -> common_pb2.Block:  # fmt: skip
    block = new_block(5, b"\x01" * 32, [b"tx-a", b"tx-b"])
    data = precommit_bytes("ch", block, round if signed_round is None else signed_round)
    write_certificate(
        block, round=round, signatures=[(s.serialized_identity, s.sign(data)) for s in signers],
        last_config=0,
    )  # fmt: skip
    return block


def problem(block: common_pb2.Block) -> str | None:
    return certificate_problem(block, "ch", CONSENTERS, MSPS, at=NOW)


def test_a_quorum_of_consenters_certifies_a_block() -> None:
    block = block_with(SIGNERS[1:])
    assert problem(block) is None
    certificate = read_certificate(block)
    assert certificate is not None
    assert certificate.round == 2
    assert [identity for identity, _ in certificate.signatures] == [
        s.serialized_identity for s in SIGNERS[1:]
    ]


def test_the_signed_bytes_are_the_consensus_precommit() -> None:
    block = new_block(5, b"\x01" * 32, [b"tx"])
    assert precommit_bytes("ch", block, 3) == signed_bytes(
        "PRECOMMIT", "ch", 5, 3, -1, header_hash(block.header)
    )
    assert signed_bytes("PRECOMMIT", "ch", 5, 3, -1, None) != signed_bytes(
        "PRECOMMIT", "ch", 5, 3, -1, b""
    )


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda: block_with(SIGNERS[:2]), "2 consenters signed; a quorum of 4 is 3",
                     id="fewer than a quorum"),
        pytest.param(lambda: block_with([SIGNERS[0], SIGNERS[0], SIGNERS[1]]),
                     "orderer0.example.com signed the certificate twice", id="one consenter twice"),
        pytest.param(lambda: block_with([*SIGNERS[:2], OTHER.signer("x", ou="orderer")]),
                     "a certificate signature is not from a consenter of the channel",
                     id="a non-consenter"),
        pytest.param(lambda: block_with([*SIGNERS[:2], ORG.signer("orderer9", ou="orderer")]),
                     "a certificate signature is not from a consenter of the channel",
                     id="an orderer of the right organisation that is not a consenter"),
        pytest.param(lambda: block_with(SIGNERS[:3], signed_round=1),
                     "the signature of orderer0.example.com does not verify",
                     id="votes of another round"),
        pytest.param(lambda: new_block(5, b"\x01" * 32, [b"tx"]),
                     "no commit certificate in the block's SIGNATURES metadata", id="no certificate"),
    ],
)  # fmt: skip
def test_what_is_not_a_certificate(make: object, expected: str) -> None:
    assert problem(make()) == expected  # type: ignore[operator]


def test_every_signature_must_verify_even_beyond_a_quorum() -> None:
    block = block_with(SIGNERS)
    metadata = common_pb2.Metadata.FromString(block.metadata.metadata[SIGNATURES])
    metadata.signatures[3].signature = metadata.signatures[0].signature
    block.metadata.metadata[SIGNATURES] = metadata.SerializeToString()
    assert problem(block) == "the signature of orderer3.example.com does not verify"


def test_a_certificate_binds_the_header() -> None:
    block = block_with(SIGNERS[:3])
    block.header.data_hash = b"\x02" * 32
    assert problem(block) == "the signature of orderer0.example.com does not verify"


def test_an_expired_consenter_identity_does_not_count() -> None:
    late = NOW + dt.timedelta(days=400)
    block = block_with(SIGNERS[:3])
    found = certificate_problem(block, "ch", CONSENTERS, MSPS, at=late)
    assert found is not None
    assert found.startswith("orderer0.example.com's identity is not valid")


def test_garbage_metadata_is_no_certificate() -> None:
    block = block_with(SIGNERS[:3])
    block.metadata.metadata[SIGNATURES] = b"\xff\xfe garbage"
    assert problem(block) == "no commit certificate in the block's SIGNATURES metadata"
