"""A contract's refusal as the error category its status code means, for the web's one mapping.

`ContractError` is a `Conflict` (409) whatever the contract said; a page or API call that a
contract refuses with 403 or 404 must answer 403 or 404, so the service layer translates once
here. The contract's own message is kept: it says what to fix and carries no patient data
(alliance/common.py checks ids without echoing notes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from medalliance.errors import (
    Conflict,
    ContractError,
    InvalidArgument,
    MedallianceError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)

__all__ = ["ContractRefused", "refusal", "translated"]

T = TypeVar("T")


class ContractRefused(Conflict):
    """A contract refused the call with a conflict (e.g. an application already reviewed)."""


class _BadInput(InvalidArgument):
    pass


class _Denied(PermissionDenied):
    pass


class _Missing(NotFound):
    pass


class _NotReady(PreconditionFailed):
    pass


_BY_STATUS: dict[int, type[MedallianceError]] = {
    400: _BadInput,
    403: _Denied,
    404: _Missing,
    412: _NotReady,
}


def refusal(exc: ContractError) -> MedallianceError:
    """The category of `exc`'s status code (409 and anything else: `ContractRefused`)."""
    return _BY_STATUS.get(exc.status_code, ContractRefused)(str(exc))


def translated(call: Callable[[], T]) -> T:
    """`call()`, with a contract's refusal raised as its category."""
    try:
        return call()
    except ContractError as exc:
        raise refusal(exc) from None
