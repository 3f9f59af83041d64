"""Stable patient pseudonyms across the alliance, computable only through the pseudonym service.

A patient reference is derived from the RFC 9497 oblivious PRF (privacy/oprf.py) of a typed,
normalised identifier under a key held by one regulator's node only (docs/privacy.md §4): a
hospital blinds the identifier (`blind_identifier`), the service evaluates the blinded element
(authenticated, rate-limited, logged: node/pseudonym_service.py), the hospital finishes it into
32 lower-case hex characters (128 bits) — the same for one identifier at every hospital, and it
fits the `patientRef` of the visit and records contracts (16-64 lower-case hex).

No hospital holds key material that would let it compute or test a pseudonym from a guessed
identity (resident ID numbers are few enough to enumerate); the service never sees the
identifier, only a blinded element. Error messages never echo an identifier (style.md §2, §5).

Pure except `blind_identifier` (randomness) and `load_key`/`save_key` (the key file).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from medalliance.errors import InvalidArgument, NotFound, PreconditionFailed
from medalliance.privacy import oprf
from medalliance.privacy.oprf import OprfKey

PSEUDONYM_HEX_CHARS = 32
# A closed list: a misspelt type would silently give the patient a second pseudonym.
ID_TYPES = ("resident-id", "passport", "medical-card")
_DOMAIN = b"medalliance/patient-pseudonym/v2"  # v1 was HMAC under a shared key
# GB 11643-1999: weights of the 17 digits, and the check character for each sum mod 11.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_RESIDENT = re.compile(r"[0-9]{17}[0-9X]")
_OTHER = re.compile(r"[0-9A-Z-]{4,32}")


def load_key(path: Path) -> OprfKey:
    """Read the pseudonym service's OPRF key written by `save_key`; `NotFound` without a file,
    `InvalidArgument` for a file that is not a key."""
    try:
        scalar = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(
            f"no OPRF key at {path}; `network init` writes one for the pseudonym regulator"
        ) from None
    try:
        return OprfKey(scalar)
    except InvalidArgument:
        raise InvalidArgument(f"{path} is not an OPRF key; restore it from a backup") from None


def save_key(key: OprfKey, path: Path, *, replace: bool = False) -> None:
    """Write the key with mode 0600, atomically (a temporary file, then a link or rename).

    An existing key is kept, even one written concurrently, unless `replace`: a new key gives
    every patient new pseudonyms. Raises `PreconditionFailed` when a key is there.
    """
    if path.exists() and not replace:
        raise _key_exists(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # mode 0600
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.scalar)
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


@dataclass(frozen=True, slots=True)
class PendingPseudonym:
    """A blinded identifier waiting for the service's answer: send `element`, then `finish`."""

    data: bytes = field(repr=False)
    blinded: oprf.Blinded = field(repr=False)

    @property
    def element(self) -> bytes:
        return self.blinded.element

    def finish(self, evaluated_element: bytes) -> str:
        """The pseudonym from the service's evaluated element; `InvalidArgument` if the answer
        is not a group element."""
        return pseudonym_of(oprf.finalize(self.data, self.blinded, evaluated_element))


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


def blind_identifier(id_type: str, id_number: str) -> PendingPseudonym:
    """Blind a typed identifier for the pseudonym service (a fresh blind each time, so two
    requests for one patient look unrelated to the service). Raises `InvalidArgument` as
    `normalise` does."""
    data = oprf_input(id_type, id_number)
    return PendingPseudonym(data, oprf.blind(data))


def oprf_input(id_type: str, id_number: str) -> bytes:
    """The OPRF input of an identifier: domain tag, type, normalised value, NUL-separated —
    neither a type (a fixed list) nor a normalised value ([0-9A-Z-]) holds a NUL, so the
    encoding is unambiguous."""
    value = normalise(id_type, id_number)
    return b"\x00".join((_DOMAIN, id_type.encode(), value.encode()))


def pseudonym_of(output: bytes) -> str:
    """The pseudonym from a 64-byte OPRF output: its first 128 bits as 32 lower-case hex."""
    if len(output) != oprf.OUTPUT_BYTES:
        raise InvalidArgument(f"an OPRF output is {oprf.OUTPUT_BYTES} bytes")
    return output[: PSEUDONYM_HEX_CHARS // 2].hex()


def _check_character(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def _key_exists(path: Path) -> PreconditionFailed:
    return PreconditionFailed(f"{path} already holds an OPRF key; it is never overwritten")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
