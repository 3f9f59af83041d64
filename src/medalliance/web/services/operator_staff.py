"""Who may use the operator pages: the organisation's administrator (its `Admin` identity).

The operator pages show the platform — nodes, channel members, blocks, contracts, membership
votes — never patient data; they act as the organisation's Admin, whose certificate the channel's
admin policies accept (membership votes) and the lifecycle answers.
"""

from __future__ import annotations

from medalliance.errors import PermissionDenied
from medalliance.web.staff import Staff

__all__ = ["OPERATOR_ROLE", "OperatorDenied", "require_operator"]

OPERATOR_ROLE = "operator"


class OperatorDenied(PermissionDenied):
    """The caller is not the organisation's alliance operator."""


def require_operator(staff: Staff) -> str:
    """The operator's MSP id; `OperatorDenied` for anyone else."""
    if staff.role != OPERATOR_ROLE:
        raise OperatorDenied(
            f"the operator pages are for an organisation's administrator; {staff.identity} of "
            f"{staff.msp_id} is {staff.role or 'without a role'}"
        )
    return staff.msp_id
