"""The connector's quarantine: which faults of a referral's package are the package's own.

A referral whose package can never be imported as it stands (malformed or unparseable, not
sealed for this hospital, not the referred patient's, a version or hash the ledger does not
commit, invalid content, missing from every authorised peer, erased) must not block the
referrals behind it: the connector notes it here with its reason and goes on. A fault of the
way to the package (a peer down, a deadline, an overloaded service) is no fault of the
package: the sync stops before that block and a later run resumes there.

What is kept names the referral and the chain's ids only; reasons are our typed errors'
messages, which never carry patient data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from medalliance.errors import (
    DeadlineExceeded,
    InvalidArgument,
    MedallianceError,
    NotFound,
    Overloaded,
    PermissionDenied,
    PreconditionFailed,
    Unavailable,
)

# InvalidArgument covers malformed packages and TamperedData (decryption failed), and
# PermissionDenied covers NotARecipient (not sealed for us) and a record we are not authorised on.
PERMANENT: tuple[type[MedallianceError], ...] = (
    InvalidArgument,
    PermissionDenied,
    NotFound,
    PreconditionFailed,
)
TRANSIENT: tuple[type[MedallianceError], ...] = (Unavailable, DeadlineExceeded, Overloaded)


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A referral whose package was refused: the chain's ids, the reason, when it was tried."""

    referral_id: str
    record_id: str
    tx_id: str
    block: int
    reason: str
    first_attempt: str  # ISO 8601, UTC
    last_attempt: str
    event: dict[str, Any]  # the ReferralCreated event (ids only), to retry from

    def attempted(self, reason: str, at: str) -> Quarantined:
        """The entry after one more failed attempt."""
        return replace(self, reason=reason, last_attempt=at)


class PackageRefused(PreconditionFailed):
    """A referral's package has a fault of its own; the referral is (or stays) quarantined."""

    def __init__(self, referral_id: str, reason: str) -> None:
        super().__init__(
            f"referral {referral_id} is quarantined: {reason}; once the cause is fixed (the "
            f"package shared again, or granted to this hospital) run "
            f"`medalliance connector retry {referral_id}`"
        )
        self.referral_id = referral_id
        self.reason = reason


def stopped_before(exc: MedallianceError, block: int, referral_id: str) -> MedallianceError:
    """A transient fault as the sync reports it: same category, with where to resume."""
    category: type[MedallianceError] = Unavailable
    for candidate in TRANSIENT:
        if isinstance(exc, candidate):
            category = candidate
    return category(
        f"{exc} (while importing referral {referral_id}); the sync stopped at block {block}, "
        "which is not finished: run `medalliance connector sync` again once your peer and the "
        "pseudonym service are reachable, and it resumes there"
    )


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
