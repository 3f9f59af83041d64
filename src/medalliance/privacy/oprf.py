"""The oblivious PRF of RFC 9497, suite ristretto255-SHA512, OPRF mode (mode 0x00).

A client blinds its input (`blind`), a server holding the private key evaluates the blinded
element without learning the input (`blind_evaluate`), and the client unblinds and hashes the
result (`finalize`). The output is a PRF of the input under the server's key: without the
server, nobody can compute or test it; the server never sees the input.

Group arithmetic is libsodium's ristretto255 (through `pysodium`, a ctypes wrapper of the
system libsodium ≥ 1.0.18, Debian's `libsodium23`); `expand_message_xmd` (RFC 9380 §5.3.1)
with SHA-512 is written here. Checked against RFC 9497 appendix A.1.1 and RFC 9380 appendix
K.3 in tests/unit/privacy/test_oprf.py.

Pure except `random_blind` and `generate_key` (randomness).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pysodium  # type: ignore[import-untyped]

from medalliance.errors import InvalidArgument

SUITE = b"ristretto255-SHA512"
MODE_OPRF = 0x00
CONTEXT = b"OPRFV1-" + bytes([MODE_OPRF]) + b"-" + SUITE  # RFC 9497 §3.1
ELEMENT_BYTES = 32
SCALAR_BYTES = 32
OUTPUT_BYTES = 64  # Nh of SHA-512
MAX_INPUT_BYTES = 0xFFFF  # inputs are length-prefixed with two bytes (RFC 9497 §3.3.1)
_HASH_BLOCK_BYTES = 128  # SHA-512's input block, the s_in_bytes of RFC 9380
_HASH_BYTES = 64
_ZERO_SCALAR = bytes(SCALAR_BYTES)


@dataclass(frozen=True, slots=True)
class OprfKey:
    """The server's private scalar skS (little-endian, 32 bytes), never printed."""

    scalar: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.scalar) != SCALAR_BYTES or self.scalar == _ZERO_SCALAR:
            raise InvalidArgument(f"an OPRF key is a non-zero {SCALAR_BYTES}-byte scalar")
        if pysodium.crypto_core_ristretto255_scalar_reduce(self.scalar + bytes(32)) != self.scalar:
            raise InvalidArgument("an OPRF key is a scalar reduced modulo the group order")


@dataclass(frozen=True, slots=True)
class Blinded:
    """A client's secret blind and the blinded element it sends to the server."""

    blind: bytes = field(repr=False)
    element: bytes


def expand_message_xmd(message: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 §5.3.1 with SHA-512: `length` uniform bytes from `message`, domain `dst`."""
    blocks = -(-length // _HASH_BYTES)
    if blocks > 255 or length > 0xFFFF or not dst or len(dst) > 255:
        raise InvalidArgument("expand_message_xmd: length ≤ 16320 and a 1-255 byte DST")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(
        bytes(_HASH_BLOCK_BYTES) + message + length.to_bytes(2, "big") + b"\x00" + dst_prime
    ).digest()
    previous = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    uniform = [previous]
    for index in range(2, blocks + 1):
        mixed = bytes(a ^ b for a, b in zip(b0, previous, strict=True))
        previous = hashlib.sha512(mixed + bytes([index]) + dst_prime).digest()
        uniform.append(previous)
    return b"".join(uniform)[:length]


def hash_to_group(data: bytes) -> bytes:
    """HashToGroup: hash_to_ristretto255 with DST "HashToGroup-" || contextString."""
    uniform = expand_message_xmd(data, b"HashToGroup-" + CONTEXT, 64)
    element: bytes = pysodium.crypto_core_ristretto255_from_hash(uniform)
    return element


def hash_to_scalar(data: bytes, dst: bytes | None = None) -> bytes:
    """HashToScalar: 64 uniform bytes reduced modulo the group order (little-endian)."""
    uniform = expand_message_xmd(data, dst or b"HashToScalar-" + CONTEXT, 64)
    scalar: bytes = pysodium.crypto_core_ristretto255_scalar_reduce(uniform)
    return scalar


def derive_key(seed: bytes, info: bytes) -> OprfKey:
    """DeriveKeyPair (RFC 9497 §3.2.1): the private key from a 32-byte seed and public info."""
    if len(seed) != 32 or len(info) > 0xFFFF - 3:
        raise InvalidArgument("DeriveKeyPair takes a 32-byte seed and a short info string")
    derive_input = seed + len(info).to_bytes(2, "big") + info
    for counter in range(256):
        scalar = hash_to_scalar(derive_input + bytes([counter]), b"DeriveKeyPair" + CONTEXT)
        if scalar != _ZERO_SCALAR:
            return OprfKey(scalar)
    raise InvalidArgument("DeriveKeyPair found no non-zero scalar; use another seed")


def generate_key() -> OprfKey:
    """A fresh random private key."""
    return OprfKey(random_blind())


def random_blind() -> bytes:
    """A uniformly random non-zero scalar."""
    scalar: bytes = pysodium.crypto_core_ristretto255_scalar_random()
    return scalar


def blind(data: bytes, blind_scalar: bytes | None = None) -> Blinded:
    """Blind (RFC 9497 §3.3.1): the blinded element of `data`. `blind_scalar` is for test
    vectors only; by default a fresh random blind is drawn. Raises `InvalidArgument` for an
    input too long to encode or one that hashes to the identity."""
    if len(data) > MAX_INPUT_BYTES:
        raise InvalidArgument(f"an OPRF input is at most {MAX_INPUT_BYTES} bytes")
    scalar = random_blind() if blind_scalar is None else blind_scalar
    element = _multiply(scalar, hash_to_group(data))
    return Blinded(scalar, element)


def blind_evaluate(key: OprfKey, blinded_element: bytes) -> bytes:
    """BlindEvaluate (RFC 9497 §3.3.1): the server's evaluated element. Raises
    `InvalidArgument` for bytes that are not a valid non-identity group element."""
    _check_element(blinded_element)
    return _multiply(key.scalar, blinded_element)


def finalize(data: bytes, blinded: Blinded, evaluated_element: bytes) -> bytes:
    """Finalize (RFC 9497 §3.3.1): the 64-byte PRF output of `data`. Raises `InvalidArgument`
    for an evaluated element that is not a valid non-identity group element."""
    _check_element(evaluated_element)
    inverse = pysodium.crypto_core_ristretto255_scalar_invert(blinded.blind)
    unblinded = _multiply(inverse, evaluated_element)
    hash_input = (
        len(data).to_bytes(2, "big")
        + data
        + len(unblinded).to_bytes(2, "big")
        + unblinded
        + b"Finalize"
    )
    return hashlib.sha512(hash_input).digest()


def evaluate(key: OprfKey, data: bytes) -> bytes:
    """Evaluate (RFC 9497 §3.3.1): the PRF output computed by the key holder directly; for
    tests and key checks only — the service evaluates blinded elements."""
    element = _multiply(key.scalar, hash_to_group(data))
    hash_input = len(data).to_bytes(2, "big") + data + len(element).to_bytes(2, "big") + element
    return hashlib.sha512(hash_input + b"Finalize").digest()


def _check_element(element: bytes) -> None:
    # DeserializeElement: a canonical ristretto255 encoding, never the identity (RFC 9497 §2.1).
    if (
        len(element) != ELEMENT_BYTES
        or element == bytes(ELEMENT_BYTES)
        or not pysodium.crypto_core_ristretto255_is_valid_point(element)
    ):
        raise InvalidArgument("an OPRF element is a 32-byte ristretto255 encoding, not identity")


def _multiply(scalar: bytes, element: bytes) -> bytes:
    try:
        product: bytes = pysodium.crypto_scalarmult_ristretto255(scalar, element)
    except ValueError:
        # libsodium refuses a product that is the identity (a zero scalar or identity input).
        raise InvalidArgument("the OPRF input maps to the identity element") from None
    return product
