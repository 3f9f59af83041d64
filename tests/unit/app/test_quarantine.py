"""The connector's quarantine rules (pure): which faults are the package's, and how a transient
fault is reported with where the sync resumes."""

from __future__ import annotations

import pytest

from medalliance.app.quarantine import (
    PERMANENT,
    TRANSIENT,
    PackageRefused,
    Quarantined,
    stopped_before,
)
from medalliance.errors import (
    Conflict,
    DeadlineExceeded,
    InvalidArgument,
    MedallianceError,
    NotFound,
    Overloaded,
    PermissionDenied,
    PreconditionFailed,
    Unavailable,
)
from medalliance.privacy.errors import NotARecipient, TamperedData

KINDS = {
    "a malformed package is the package's fault": (InvalidArgument("bad"), "permanent"),
    "a tampered package is the package's fault": (TamperedData("R-1", 1), "permanent"),
    "a package not sealed for us is the package's fault": (
        NotARecipient("B", "R-1", 1, "no key"), "permanent"),
    "a package no peer holds is the package's fault": (NotFound("gone"), "permanent"),
    "an erased record is the package's fault": (PreconditionFailed("erased"), "permanent"),
    "a refusal is the package's fault": (PermissionDenied("not authorised"), "permanent"),
    "a peer that is down is no fault of the package": (Unavailable("down"), "transient"),
    "a deadline is no fault of the package": (DeadlineExceeded("slow"), "transient"),
    "an overloaded service is no fault of the package": (Overloaded("busy"), "transient"),
    "a conflict of our own calls is neither": (Conflict("mvcc"), "neither"),
}  # fmt: skip


@pytest.mark.parametrize(("error", "kind"), KINDS.values(), ids=list(KINDS))
def test_faults_are_sorted_into_the_packages_and_the_ways(
    error: MedallianceError, kind: str
) -> None:
    found = (
        "permanent"
        if isinstance(error, PERMANENT)
        else "transient"
        if isinstance(error, TRANSIENT)
        else "neither"
    )
    assert found == kind


@pytest.mark.parametrize(
    "error",
    [Unavailable("peer down"), DeadlineExceeded("too slow"), Overloaded("busy")],
    ids=["unavailable stays unavailable", "a deadline stays a deadline", "overload stays overload"],
)
def test_a_transient_fault_keeps_its_category_and_says_where_to_resume(
    error: MedallianceError,
) -> None:
    reported = stopped_before(error, 12, "REF-1")
    assert type(reported) is type(error)
    assert reported.status.exit_code == 3
    assert "REF-1" in str(reported)
    assert "stopped at block 12" in str(reported)


def test_a_new_attempt_keeps_the_first_and_a_refusal_exits_1() -> None:
    entry = Quarantined("REF-1", "R-1", "tx", 3, "old", "t0", "t0", {"referralId": "REF-1"})
    again = entry.attempted("new", "t1")
    assert (again.first_attempt, again.last_attempt, again.reason) == ("t0", "t1", "new")
    refused = PackageRefused("REF-1", "InvalidBundle: not JSON")
    assert refused.status.exit_code == 1
    assert "connector retry REF-1" in str(refused)
