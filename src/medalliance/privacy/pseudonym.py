"""Stable patient pseudonyms across the alliance: a keyed hash of a typed, normalised identifier.

`pseudonym(key, "resident-id", "32010219900101123X")` is HMAC-SHA256 under the alliance's
pseudonym key, truncated to 32 hex characters (128 bits), over a domain-separated encoding of the
identifier type and value, so the same person gets the same reference at every hospital and no
identity reaches the ledger. Without the key it cannot be reversed, nor checked by hashing
guesses (resident ID numbers are few enough to enumerate, which a plain hash would allow). The
key is an alliance secret held by the hospitals that register patients; regulators and the
ledger see pseudonyms only. Error messages never echo an identifier.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from medalliance.errors import InvalidArgument, NotFound, PreconditionFailed

KEY_BYTES = 32
ID_TYPES = ("resident-id", "passport", "medical-card")
_DOMAIN = b"medalliance/patient-pseudonym/v1"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_RESIDENT = re.compile(r"^[0-9]{17}[0-9X]$")
_OTHER = re.compile(r"^[0-9A-Z-]{4,32}$")


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise InvalidArgument(f"a pseudonym key is {KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> PseudonymKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def load(cls, path: Path) -> PseudonymKey:
        try:
            return cls(path.read_bytes())
        except FileNotFoundError:
            raise NotFound(f"no pseudonym key at {path}") from None

    def save(self, path: Path, *, replace: bool = False) -> None:
        """Write the key with mode 0600, atomically; an existing key is kept unless `replace`
        (a new key gives every patient new pseudonyms)."""
        if path.exists() and not replace:
            raise PreconditionFailed(
                f"{path} already holds a pseudonym key; it is never overwritten"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.secret)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise


def normalise(id_type: str, id_number: str) -> str:
    """The canonical form of an identifier; raises `InvalidArgument` (never quoting it)."""
    if id_type not in ID_TYPES:
        raise InvalidArgument(f"identifier type must be one of {', '.join(ID_TYPES)}")
    value = "".join(id_number.split()).upper()
    if id_type == "resident-id":
        if not _RESIDENT.match(value):
            raise InvalidArgument("a resident ID number has 17 digits and a check digit or X")
        total = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True))
        if _CHECK[total % 11] != value[17]:
            raise InvalidArgument("the resident ID number's check digit is wrong; check for a typo")
    elif not _OTHER.match(value):
        raise InvalidArgument(f"a {id_type} number has 4-32 letters, digits or '-'")
    return value


def pseudonym(key: PseudonymKey, id_type: str, id_number: str) -> str:
    """The patient's alliance-wide pseudonym: 32 lower-case hex characters."""
    value = normalise(id_type, id_number)
    message = b"\x00".join((_DOMAIN, id_type.encode(), value.encode()))
    return hmac.new(key.secret, message, hashlib.sha256).hexdigest()[:32]
