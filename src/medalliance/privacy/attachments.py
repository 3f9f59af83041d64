"""Large attachments (images, pathology reports) beside a clinical package.

Each attachment is encrypted with its own fresh AES-256-GCM key (associated data: record id,
version and position), and its ciphertext goes to the document store, whose address the ledger
records. The keys travel inside the sealed package, so whoever can open the package can open
its attachments, and a grant (which re-wraps only the package's data key) leaves every
attachment and its address unchanged.

The package's plaintext is a bundle: `{"package": <the clinical data, base64>, "attachments":
[{"name", "address", "key"}]}`.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import PurePath

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medalliance.errors import InvalidArgument
from medalliance.privacy.errors import TamperedData


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    name: str
    address: str  # the document-store address of the ciphertext
    key: bytes = field(repr=False)


def seal_attachment(
    data: bytes, *, record_id: str, version: int, index: int
) -> tuple[bytes, bytes]:
    """(ciphertext, key) of one attachment; the key goes into the package."""
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, data, _ad(record_id, version, index)), key


def open_attachment(
    ciphertext: bytes, key: bytes, *, record_id: str, version: int, index: int
) -> bytes:
    try:
        return AESGCM(key).decrypt(ciphertext[:12], ciphertext[12:], _ad(record_id, version, index))
    except (InvalidTag, ValueError):
        raise TamperedData(record_id, version) from None


def bundle(package: bytes, attachments: list[AttachmentRef]) -> bytes:
    return json.dumps(
        {
            "package": base64.b64encode(package).decode(),
            "attachments": [
                {"name": a.name, "address": a.address, "key": base64.b64encode(a.key).decode()}
                for a in attachments
            ],
        },
        sort_keys=True,
    ).encode()


def unbundle(plaintext: bytes) -> tuple[bytes, list[AttachmentRef]]:
    try:
        document = json.loads(plaintext)
        package = base64.b64decode(document["package"], validate=True)
        refs = [
            AttachmentRef(
                safe_name(str(a["name"])),
                str(a["address"]),
                base64.b64decode(a["key"], validate=True),
            )
            for a in document["attachments"]
        ]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument("the opened package is not a medalliance bundle") from None
    return package, refs


def safe_name(name: str) -> str:
    """A file name without folders, so an attachment name cannot write outside its folder."""
    base = PurePath(name).name
    if base in ("", ".", ".."):
        raise InvalidArgument("an attachment needs a file name")
    return base


def _ad(record_id: str, version: int, index: int) -> bytes:
    return json.dumps(["medalliance/privacy/attachment/v1", record_id, version, index]).encode()
