"""Errors of the data privacy module, each under a category of `medalliance.errors`.

Messages name the record, version, organisation or key id and say what to do; they never carry
plaintext, ciphertext, wrapped keys or key material (style.md §2, §5).
"""

from __future__ import annotations

from medalliance.errors import InvalidArgument, InvalidIdentity, NotFound, PermissionDenied


class NotARecipient(PermissionDenied):
    """The package holds no data key wrapped for this organisation, or for a key it holds."""

    def __init__(self, msp_id: str, record_id: str, version: int, detail: str) -> None:
        super().__init__(
            f"organisation {msp_id} cannot open record {record_id!r} version {version}: {detail}"
        )
        self.msp_id = msp_id
        self.record_id = record_id
        self.version = version


class TamperedData(InvalidArgument):
    """A package failed authentication: altered, truncated, or moved to another record/version."""

    def __init__(self, record_id: str, version: int) -> None:
        super().__init__(
            f"the sealed package of record {record_id!r} version {version} failed authentication "
            "(altered, or sealed for another record or version); fetch it again from another "
            "authorised holder and check it against the digest on the ledger"
        )
        self.record_id = record_id
        self.version = version


class NoEncryptionKey(NotFound):
    """An organisation folder without a usable encryption certificate or private key."""


class UntrustedEncryptionKey(InvalidIdentity):
    """An encryption certificate that its organisation's CA did not issue, or that is unusable."""

    def __init__(self, msp_id: str, key_id: str, reason: str) -> None:
        super().__init__(
            f"refusing encryption key {key_id} of {msp_id}: {reason}; "
            f"ask {msp_id} to rotate its encryption key with its own CA"
        )
        self.msp_id = msp_id
        self.key_id = key_id
