"""Stable patient pseudonyms across the alliance: a keyed hash of a typed, normalised identifier.

`pseudonym(key, "resident-id", "32010219900101123X")` is HMAC-SHA256 under the alliance's
pseudonym key, truncated to 32 hex characters (128 bits), over a domain-separated encoding of the
identifier type and value, so the same person gets the same reference at every hospital and no
identity reaches the ledger. It fits the `patientRef` of the visit and records contracts (16-64
lower-case hex).

Not reversible without the key, nor checkable by hashing guesses: resident ID numbers are few
enough to enumerate, which a plain hash would allow. The key is an alliance secret held by the
hospitals that register patients (`network init` gives it to them only); regulators and the
ledger see pseudonyms only. A new key gives every patient a new pseudonym, so it is never
replaced by accident. Error messages never echo an identifier (style.md §2, §5).

Pure except `PseudonymKey.generate` (randomness) and `load`/`save` (the key file).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from medalliance.errors import InvalidArgument, NotFound, PreconditionFailed

KEY_BYTES = 32
PSEUDONYM_HEX_CHARS = 32
# A closed list: a misspelt type would silently give the patient a second pseudonym.
ID_TYPES = ("resident-id", "passport", "medical-card")
_DOMAIN = b"medalliance/patient-pseudonym/v1"
# GB 11643-1999: weights of the 17 digits, and the check character for each sum mod 11.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_RESIDENT = re.compile(r"[0-9]{17}[0-9X]")
_OTHER = re.compile(r"[0-9A-Z-]{4,32}")


@dataclass(frozen=True, slots=True)
class PseudonymKey:
    """The alliance's pseudonym key: 32 random bytes, never printed (its repr hides them)."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise InvalidArgument(f"a pseudonym key is {KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> PseudonymKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def load(cls, path: Path) -> PseudonymKey:
        """Read a key written by `save`; raises `NotFound` without a file, `InvalidArgument`
        for a file that is not a key."""
        try:
            secret = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no pseudonym key at {path}; `network init` writes one") from None
        if len(secret) != KEY_BYTES:
            raise InvalidArgument(
                f"{path} is not a pseudonym key ({KEY_BYTES} bytes); restore it from a backup"
            )
        return cls(secret)

    def save(self, path: Path, *, replace: bool = False) -> None:
        """Write the key with mode 0600, atomically (a temporary file, then a link or rename).

        An existing key is kept, even one written concurrently, unless `replace`: a new key
        gives every patient new pseudonyms. Raises `PreconditionFailed` when a key is there.
        """
        if path.exists() and not replace:
            raise _key_exists(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # mode 0600
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.secret)
                f.flush()
                os.fsync(f.fileno())
            if replace:
                os.replace(temp, path)
            else:
                try:  # a link fails if the name exists: no window between check and write
                    os.link(temp, path)
                except FileExistsError:
                    raise _key_exists(path) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        _fsync_directory(path.parent)


def normalise(id_type: str, id_number: str) -> str:
    """The canonical form of an identifier: NFKC (full-width digits), no whitespace, upper case
    (the check character x → X). Raises `InvalidArgument` for an unknown type, or a malformed
    number or wrong GB 11643 check digit of a resident ID; the message never quotes the number.
    """
    if id_type not in ID_TYPES:
        raise InvalidArgument(f"identifier type must be one of {', '.join(ID_TYPES)}")
    value = "".join(unicodedata.normalize("NFKC", id_number).split()).upper()
    if id_type == "resident-id":
        if not _RESIDENT.fullmatch(value):
            raise InvalidArgument("a resident ID number has 17 digits and a check digit or X")
        if _check_character(value[:17]) != value[17]:
            raise InvalidArgument("the resident ID number's check digit is wrong; check for a typo")
    elif not _OTHER.fullmatch(value):
        raise InvalidArgument(f"a {id_type} number has 4-32 letters, digits or '-'")
    return value


def pseudonym(key: PseudonymKey, id_type: str, id_number: str) -> str:
    """The patient's alliance-wide pseudonym: 32 lower-case hex characters, the same for every
    spelling `normalise` accepts. Not reversible without `key`. Raises `InvalidArgument` as
    `normalise` does.
    """
    value = normalise(id_type, id_number)
    # Domain tag, type, value, NUL-separated: neither a type (a fixed list) nor a normalised
    # value ([0-9A-Z-]) holds a NUL, so the encoding is unambiguous.
    message = b"\x00".join((_DOMAIN, id_type.encode(), value.encode()))
    return hmac.new(key.secret, message, hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]


def _check_character(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def _key_exists(path: Path) -> PreconditionFailed:
    return PreconditionFailed(f"{path} already holds a pseudonym key; it is never overwritten")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
