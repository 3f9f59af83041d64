"""RFC 9497 (ristretto255-SHA512, OPRF mode) and RFC 9380 (expand_message_xmd SHA-512) vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medalliance.errors import InvalidArgument
from medalliance.privacy import oprf

# RFC 9497 appendix A.1.1: OPRF(ristretto255, SHA-512), mode 0x00.
SEED = bytes.fromhex("a3" * 32)
KEY_INFO = bytes.fromhex("74657374206b6579")
SK_SM = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e"
BLIND = bytes.fromhex("64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706")
VECTORS = [
    pytest.param(
        "00",
        "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
        "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
        "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3"
        "ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6",
        id="test vector 1: a one-byte input",
    ),
    pytest.param(
        "5a" * 17,
        "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
        "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
        "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4"
        "f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73",
        id="test vector 2: a 17-byte input",
    ),
]


def test_derive_key_pair_gives_the_rfc_private_key() -> None:
    assert oprf.derive_key(SEED, KEY_INFO).scalar.hex() == SK_SM


@pytest.mark.parametrize(("data", "blinded", "evaluated", "output"), VECTORS)
def test_the_protocol_reproduces_the_rfc_vectors(
    data: str, blinded: str, evaluated: str, output: str
) -> None:
    key = oprf.derive_key(SEED, KEY_INFO)
    sent = oprf.blind(bytes.fromhex(data), BLIND)
    assert sent.element.hex() == blinded
    answer = oprf.blind_evaluate(key, sent.element)
    assert answer.hex() == evaluated
    assert oprf.finalize(bytes.fromhex(data), sent, answer).hex() == output
    assert oprf.evaluate(key, bytes.fromhex(data)).hex() == output


@pytest.mark.parametrize(
    ("message", "length", "expected"),
    [
        pytest.param(
            b"",
            0x20,
            "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba",
            id="RFC 9380 K.3: empty message, 32 bytes",
        ),
        pytest.param(
            b"abcdef0123456789",
            0x20,
            "087e45a86e2939ee8b91100af1583c4938e0f5fc6c9db4b107b83346bc967f58",
            id="RFC 9380 K.3: abcdef0123456789, 32 bytes",
        ),
        pytest.param(
            b"abc",
            0x80,
            "7f1dddd13c08b543f2e2037b14cefb255b44c83cc397c1786d975653e36a6b11"
            "bdd7732d8b38adb4a0edc26a0cef4bb45217135456e58fbca1703cd6032cb134"
            "7ee720b87972d63fbf232587043ed2901bce7f22610c0419751c065922b48843"
            "1851041310ad659e4b23520e1772ab29dcdeb2002222a363f0c2b1c972b3efe1",
            id="RFC 9380 K.3: abc, 128 bytes (two blocks)",
        ),
    ],
)
def test_expand_message_xmd_sha512_vectors(message: bytes, length: int, expected: str) -> None:
    dst = b"QUUX-V01-CS02-with-expander-SHA512-256"
    assert oprf.expand_message_xmd(message, dst, length).hex() == expected


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=64))
def test_a_random_blind_gives_the_same_output_as_direct_evaluation(data: bytes) -> None:
    key = oprf.generate_key()
    sent = oprf.blind(data)
    assert oprf.finalize(data, sent, oprf.blind_evaluate(key, sent.element)) == oprf.evaluate(
        key, data
    )


def test_blinded_elements_of_one_input_differ_so_the_server_cannot_link_them() -> None:
    assert oprf.blind(b"x").element != oprf.blind(b"x").element


@pytest.mark.parametrize(
    "element",
    [
        pytest.param(bytes(32), id="the identity"),
        pytest.param(b"\xff" * 32, id="a non-canonical encoding"),
        pytest.param(b"\x01" * 31, id="a short encoding"),
    ],
)
def test_the_server_refuses_what_is_not_a_group_element(element: bytes) -> None:
    with pytest.raises(InvalidArgument, match="ristretto255"):
        oprf.blind_evaluate(oprf.generate_key(), element)


@pytest.mark.parametrize(
    "scalar",
    [pytest.param(bytes(32), id="zero"), pytest.param(b"\xff" * 32, id="not reduced")],
)
def test_a_key_is_a_non_zero_reduced_scalar(scalar: bytes) -> None:
    with pytest.raises(InvalidArgument, match="OPRF key"):
        oprf.OprfKey(scalar)


def test_a_key_never_prints_its_scalar() -> None:
    key = oprf.generate_key()
    assert key.scalar.hex() not in repr(key)
