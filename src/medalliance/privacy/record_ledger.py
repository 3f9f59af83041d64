"""What a committed `records` entry means to a holder of sealed packages (docs/privacy.md §4).

The privacy module owns the meaning of the record registry's committed state, so that the node
layer can wire "a block committed these valid writes" and "read this committed key" to it
without knowing any contract by name. It owns the registry's namespace and key layout (the
records contract builds its keys with these functions), reads one committed version with the
record's current rights, decides whether a sealed package matches what the ledger committed
(ciphertext digest AND each recipient's wrapped-key commitment), and finds the records that a
block's valid writes put into the erased state. Side effects follow committed state, never a
chaincode event: an event is only a claim of the transaction that emitted it.

Pure: no files, no clock, no I/O; committed state arrives as a lookup function.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from medalliance.errors import InvalidArgument, NotFound, PermissionDenied, PreconditionFailed
from medalliance.privacy.envelope import SealedPackage

NAMESPACE = "records"  # the registry's namespace on the channel (records contract)
_SEPARATOR = "\x00"  # Fabric's composite-key separator

# A committed value in the registry's namespace by key, or None if none is committed.
Lookup = Callable[[str], bytes | None]


def composite_key(object_type: str, attributes: Iterable[str]) -> str:
    """Fabric's composite key (U+0000 before and after every part), as contracts build it."""
    return _SEPARATOR + object_type + _SEPARATOR + "".join(a + _SEPARATOR for a in attributes)


def record_key(record_id: str) -> str:
    return composite_key("record", [record_id])


def version_key(record_id: str, version: int) -> str:
    return composite_key("recordversion", [record_id, f"{version:010d}"])


def receipt_key(record_id: str, msp_id: str) -> str:
    """Where an organisation's deletion receipt for an erased record is committed."""
    return composite_key("erasurereceipt", [record_id, msp_id])


@dataclass(frozen=True, slots=True)
class CommittedVersion:
    """One committed version of a record, with the record's rights as they are now."""

    record_id: str
    version: int
    digest: str  # SHA-256 of the package ciphertext
    attachments: tuple[str, ...]  # document addresses
    authorised: tuple[str, ...]  # currently authorised MSP ids (grants and revocations applied)
    key_commitments: Mapping[str, str] = field(default_factory=dict)  # MSP id -> commitment


def committed_version(lookup: Lookup, record_id: str, version: int) -> CommittedVersion:
    """The committed version; `NotFound` if it is not committed, `PreconditionFailed` if the
    record was erased."""
    record_raw, entry_raw = lookup(record_key(record_id)), lookup(version_key(record_id, version))
    if record_raw is None or entry_raw is None:
        raise NotFound(f"version {version} of record {record_id} is not committed")
    record, entry = json.loads(record_raw), json.loads(entry_raw)
    if record["erased"]:
        raise PreconditionFailed(f"record {record_id} was erased")
    return CommittedVersion(
        record_id=record_id,
        version=version,
        digest=str(entry["digest"]),
        attachments=tuple(str(a) for a in entry["attachments"]),
        authorised=tuple(str(o) for o in record["authorised"]),
        key_commitments={str(k): str(v) for k, v in entry.get("keys", {}).items()},
    )


def check_package(committed: CommittedVersion, package: SealedPackage, keeper: str) -> None:
    """Refuse a package that `keeper`'s organisation must not keep for this committed version.

    Kept only if `keeper` is currently authorised, the ciphertext hashes to the committed
    digest, every wrapped key in the package is the one committed for its organisation (none
    added, none swapped), and the package carries `keeper`'s own wrapped key. Raises
    `PermissionDenied` or `InvalidArgument` saying which check failed (no key material).
    """
    where = f"record {committed.record_id} v{committed.version}"
    if keeper not in committed.authorised:
        raise PermissionDenied(f"{keeper} is not authorised for record {committed.record_id}")
    if package.digest != committed.digest:
        raise InvalidArgument(f"package of {where} does not match the digest on the ledger")
    if not committed.key_commitments:
        raise InvalidArgument(
            f"{where} was registered without wrapped-key commitments, so no holder can check "
            "its wrapped keys; register it again with them (`privacy share`)"
        )
    wrong = sorted(
        msp_id
        for msp_id, commitment in package.key_commitments.items()
        if committed.key_commitments.get(msp_id) != commitment
    )
    if wrong:
        raise InvalidArgument(
            f"the wrapped keys for {', '.join(wrong)} in the package of {where} are not the "
            "ones committed on the ledger; not kept"
        )
    if keeper not in package.key_commitments:
        raise InvalidArgument(f"the package of {where} carries no wrapped key for {keeper}")


def erased_records(writes: Iterable[tuple[str, str, bytes | None]]) -> list[str]:
    """The records that these committed writes (namespace, key, value) of VALID transactions
    put into the erased state, in write order; what every holder must delete."""
    erased = []
    for namespace, key, value in writes:
        if namespace != NAMESPACE or value is None:
            continue
        parts = _split(key)
        if parts is None or parts[0] != "record" or len(parts) != 2:
            continue
        record = _json_object(value)
        if record is not None and record.get("erased") is True and parts[1] not in erased:
            erased.append(parts[1])
    return erased


def _split(key: str) -> list[str] | None:
    if not key.startswith(_SEPARATOR) or not key.endswith(_SEPARATOR) or len(key) < 2:
        return None
    return key[1:-1].split(_SEPARATOR)


def _json_object(value: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
