"""Envelope encryption of clinical packages, with the data key wrapped per organisation (HPKE).

docs/privacy.md §4. `seal` encrypts a package once under a fresh 256-bit data key with
AES-256-GCM (random 96-bit nonce; associated data = record id and version, so a ciphertext moved
to another record or version fails) and wraps the data key for each recipient organisation with
HPKE (RFC 9180, base mode: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), whose `info`
binds record id, version, MSP id and key id. The ledger records `SealedPackage.digest`, the
SHA-256 of the ciphertext (nonce included), and `SealedPackage.key_commitments`, one SHA-256
per recipient's wrapped key: a grant adds a wrapped key (and its commitment) but never changes
the ciphertext, so never the digest.

What it guarantees: only holders of a recipient's private key can read the package; any change
to the ciphertext, nonce or a wrapped key, or a move to another record/version, is detected
(`TamperedData`). What it does not: HPKE base mode does not authenticate the sender, and every
recipient knows the data key, so a recipient could forge a different ciphertext for the same
record and version, or wrap a key of its own for another recipient. Against that holders check
`digest` and every wrapped key's commitment against the ledger before keeping a package.

Pure: no files, no clock, no logging; randomness only from the OS for keys and nonces.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medalliance.errors import InvalidArgument
from medalliance.privacy.errors import NotARecipient, TamperedData
from medalliance.privacy.keys import KEY_ID_HEX_DIGITS, RecipientKey

SUITE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
FORMAT = 1  # of `SealedPackage.to_bytes`
DATA_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
# HPKE single-shot output: the KEM's encapsulated key (an uncompressed P-256 point), then the
# AEAD ciphertext of the data key with its tag.
WRAPPED_KEY_BYTES = hpke.KEM.P256.enc_length() + DATA_KEY_BYTES + TAG_BYTES
MAX_VERSION = 2**63 - 1
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """The package's data key, HPKE-encrypted to one organisation's encryption key `key_id`."""

    msp_id: str
    key_id: str
    enc: bytes = field(repr=False)  # HPKE encapsulated key || wrapped data key || tag


@dataclass(frozen=True, slots=True)
class SealedPackage:
    """An encrypted package: what authorised organisations store and exchange, off the ledger.

    `ciphertext` is nonce || AES-256-GCM ciphertext || tag; `wrapped` holds one entry per
    organisation, sorted by MSP id. Build it with `seal` or `from_bytes`.
    """

    record_id: str
    version: int
    ciphertext: bytes = field(repr=False)
    wrapped: tuple[WrappedKey, ...]

    @property
    def digest(self) -> str:
        """Hex SHA-256 of the ciphertext: what the ledger records for this version."""
        return hashlib.sha256(self.ciphertext).hexdigest()

    @property
    def key_commitments(self) -> dict[str, str]:
        """Per recipient MSP id, the hex SHA-256 commitment to its wrapped key.

        The ledger records these beside `digest` (docs/privacy.md §4), so a holder can refuse a
        package whose wrapped keys were swapped: HPKE base mode does not authenticate the
        sender, so without the commitment anyone holding the ciphertext could wrap a key of
        their own choosing for a recipient, or drop one.
        """
        return {
            w.msp_id: wrapped_key_commitment(self.record_id, self.version, w) for w in self.wrapped
        }

    def extends(self, held: SealedPackage) -> bool:
        """Whether this package is `held` with zero or more wrapped keys added (a grant).

        Same record, version and ciphertext, and every wrapped key of `held` unchanged: whoever
        could open `held` can open this one, so a holder may replace `held` with it.
        """
        mine = {w.msp_id: w for w in self.wrapped}
        return (self.record_id, self.version, self.ciphertext) == (
            held.record_id,
            held.version,
            held.ciphertext,
        ) and all(mine.get(w.msp_id) == w for w in held.wrapped)

    @property
    def recipients(self) -> tuple[str, ...]:
        """The MSP ids the data key is wrapped for."""
        return tuple(w.msp_id for w in self.wrapped)

    def to_bytes(self) -> bytes:
        """The canonical encoding: sorted compact UTF-8 JSON, binary fields in base64."""
        document = {
            "format": FORMAT,
            "record_id": self.record_id,
            "version": self.version,
            "ciphertext": _b64(self.ciphertext),
            "wrapped": [
                {"msp_id": w.msp_id, "key_id": w.key_id, "enc": _b64(w.enc)} for w in self.wrapped
            ],
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SealedPackage:
        """Parse the canonical encoding; raises `InvalidArgument` for anything else.

        Only the shape is checked here: authenticity is checked by `open_package`, and the
        ciphertext against the ledger's digest by the caller.
        """
        try:
            document = json.loads(data.decode("utf-8"))
            package = _from_document(document)
            canonical = package.to_bytes()
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            # ValueError covers bad UTF-8, bad JSON, bad base64 and unencodable surrogates.
            raise InvalidArgument("malformed sealed package: not its canonical JSON") from exc
        if canonical != data:
            raise InvalidArgument("malformed sealed package: not its canonical JSON")
        return package


def wrapped_key_commitment(record_id: str, version: int, wrapped: WrappedKey) -> str:
    """Hex SHA-256 over one wrapped key and everything it is bound to (record id, version,
    MSP id, key id): what the ledger commits for that recipient."""
    return hashlib.sha256(
        _canonical(
            [
                "medalliance/privacy/wrapped-key/v1",
                record_id,
                version,
                wrapped.msp_id,
                wrapped.key_id,
                _b64(wrapped.enc),
            ]
        )
    ).hexdigest()


def seal(
    plaintext: bytes, *, record_id: str, version: int, recipients: Sequence[RecipientKey]
) -> SealedPackage:
    """Encrypt `plaintext` as version `version` of record `record_id` for `recipients`.

    Pass verified recipient keys (`keys.recipient_key`), including the sealing organisation's
    own if it wants to read the package back. Raises `InvalidArgument` for no recipients, an
    organisation listed twice, or a bad record id or version.
    """
    _check_header(record_id, version)
    if not recipients:
        raise InvalidArgument(f"record {record_id!r}: seal for at least one organisation")
    data_key = AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(data_key).encrypt(nonce, plaintext, _associated_data(record_id, version))
    wrapped = _wrap_for(data_key, record_id, version, recipients)
    return SealedPackage(record_id, version, nonce + body, _sorted_unique(record_id, wrapped))


def open_package(
    package: SealedPackage, msp_id: str, private_keys: Mapping[str, ec.EllipticCurvePrivateKey]
) -> bytes:
    """The plaintext, for organisation `msp_id` holding `private_keys` (by key id).

    Raises `NotARecipient` when no data key is wrapped for `msp_id` or for a key it holds, and
    `TamperedData` when the wrapped key or the ciphertext fails authentication. Record the
    access on the ledger (records contract `LogAccess`) and never log the result.
    """
    data_key = _unwrap(package, msp_id, private_keys)
    return _decrypt(package, data_key)


def add_recipients(
    package: SealedPackage,
    msp_id: str,
    private_keys: Mapping[str, ec.EllipticCurvePrivateKey],
    new_recipients: Sequence[RecipientKey],
) -> SealedPackage:
    """A grant: the package with its data key also wrapped for `new_recipients`.

    `msp_id` must be a holder (it unwraps the data key with `private_keys`); the ciphertext and
    so the digest are unchanged. The data key is checked against the ciphertext first, so a
    holder never passes on a key that does not open the package. A new recipient already in
    the package is wrapped again (for its newest key, after a rotation). Raises as
    `open_package`, and `InvalidArgument` when an organisation is listed twice.
    """
    data_key = _unwrap(package, msp_id, private_keys)
    _decrypt(package, data_key)  # the plaintext is discarded: only its authenticity matters
    added = _wrap_for(data_key, package.record_id, package.version, new_recipients)
    names = {w.msp_id for w in added}
    kept = [w for w in package.wrapped if w.msp_id not in names]
    return replace(package, wrapped=_sorted_unique(package.record_id, [*kept, *added]))


def remove_recipient(package: SealedPackage, msp_id: str) -> SealedPackage:
    """A revocation: the package without the data key wrapped for `msp_id`.

    This stops the organisation from opening copies sent to it from now on, and versions
    sealed later without it. It cannot take back what it already read: an organisation that
    opened this version, or kept an earlier copy of the package, can still read this version.
    Returns the package unchanged when `msp_id` is not a recipient. Raises `InvalidArgument`
    when it is the last recipient (erase the record instead).
    """
    kept = tuple(w for w in package.wrapped if w.msp_id != msp_id)
    if not kept:
        raise InvalidArgument(
            f"record {package.record_id!r} version {package.version}: {msp_id} is the last "
            "recipient; erase the record instead of revoking"
        )
    return replace(package, wrapped=kept)


# --- private helpers -----------------------------------------------------------------------------


def _associated_data(record_id: str, version: int) -> bytes:
    # A JSON array is unambiguous: no record id can make two (record, version) pairs collide.
    return _canonical(["medalliance/privacy/package/v1", record_id, version])


def _wrap_info(record_id: str, version: int, msp_id: str, key_id: str) -> bytes:
    return _canonical(["medalliance/privacy/wrap/v1", record_id, version, msp_id, key_id])


def _canonical(value: list[str | int]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _wrap_for(
    data_key: bytes, record_id: str, version: int, recipients: Sequence[RecipientKey]
) -> list[WrappedKey]:
    wrapped = []
    for r in recipients:
        info = _wrap_info(record_id, version, r.msp_id, r.key_id)
        wrapped.append(WrappedKey(r.msp_id, r.key_id, SUITE.encrypt(data_key, r.public_key, info)))
    return wrapped


def _unwrap(
    package: SealedPackage, msp_id: str, private_keys: Mapping[str, ec.EllipticCurvePrivateKey]
) -> bytes:
    record_id, version = package.record_id, package.version
    wrap = next((w for w in package.wrapped if w.msp_id == msp_id), None)
    if wrap is None:
        raise NotARecipient(
            msp_id, record_id, version, "it is not authorised; ask a holder for a grant"
        )
    key = private_keys.get(wrap.key_id)
    if key is None:
        raise NotARecipient(
            msp_id,
            record_id,
            version,
            f"it is wrapped for key {wrap.key_id}, which is not in the keyring; "
            "load the keyring with every key, including rotated ones",
        )
    info = _wrap_info(record_id, version, msp_id, wrap.key_id)
    try:
        data_key = SUITE.decrypt(wrap.enc, key, info)
    except (InvalidTag, ValueError) as exc:
        raise TamperedData(record_id, version) from exc
    if len(data_key) != DATA_KEY_BYTES:
        raise TamperedData(record_id, version)
    return data_key


def _decrypt(package: SealedPackage, data_key: bytes) -> bytes:
    nonce, body = package.ciphertext[:NONCE_BYTES], package.ciphertext[NONCE_BYTES:]
    associated = _associated_data(package.record_id, package.version)
    try:
        return AESGCM(data_key).decrypt(nonce, body, associated)
    except (InvalidTag, ValueError) as exc:
        raise TamperedData(package.record_id, package.version) from exc


def _sorted_unique(record_id: str, wrapped: Sequence[WrappedKey]) -> tuple[WrappedKey, ...]:
    names = [w.msp_id for w in wrapped]
    if len(set(names)) != len(names):
        raise InvalidArgument(f"record {record_id!r}: an organisation is listed twice")
    return tuple(sorted(wrapped, key=lambda w: w.msp_id))


def _check_header(record_id: object, version: object) -> None:
    if not isinstance(record_id, str) or not record_id:
        raise InvalidArgument("a sealed package needs a non-empty record id")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_VERSION:
        raise InvalidArgument(f"record {record_id!r}: version must be an integer ≥ 0")


def _from_document(document: Any) -> SealedPackage:
    if not isinstance(document, dict) or set(document) != {
        "format",
        "record_id",
        "version",
        "ciphertext",
        "wrapped",
    }:
        raise ValueError("unexpected fields")
    if document["format"] != FORMAT or isinstance(document["format"], bool):
        raise ValueError("unknown format")
    record_id, version = document["record_id"], document["version"]
    _check_header(record_id, version)
    ciphertext = _unb64(document["ciphertext"])
    if len(ciphertext) < NONCE_BYTES + TAG_BYTES:
        raise ValueError("ciphertext too short")
    entries = document["wrapped"]
    if not isinstance(entries, list) or not entries:
        raise ValueError("no wrapped keys")
    wrapped = [_wrapped_from(entry) for entry in entries]
    return SealedPackage(record_id, version, ciphertext, _sorted_unique(record_id, wrapped))


def _wrapped_from(entry: Any) -> WrappedKey:
    if not isinstance(entry, dict) or set(entry) != {"msp_id", "key_id", "enc"}:
        raise ValueError("unexpected wrapped-key fields")
    msp_id, kid = entry["msp_id"], entry["key_id"]
    if not isinstance(msp_id, str) or not msp_id:
        raise ValueError("bad msp id")
    if not isinstance(kid, str) or len(kid) != KEY_ID_HEX_DIGITS or not set(kid) <= _HEX:
        raise ValueError("bad key id")
    enc = _unb64(entry["enc"])
    if len(enc) != WRAPPED_KEY_BYTES:
        raise ValueError("bad wrapped key length")
    return WrappedKey(msp_id, kid, enc)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("bad base64") from exc
