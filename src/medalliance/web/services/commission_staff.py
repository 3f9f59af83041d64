"""Who may use the commission pages: a reviewer or auditor of a health commission, proven.

The web layer's `Staff` says who logged in; before any commission answer the caller is proven
again from its own certificate and key in the network folder (app/audit_queries.py
`authenticate`: issued by its organisation's CA, the key signs for it) and the alliance role is
read from the certificate, not from the account. Reviewing needs the `reviewer` role; the
audit views answer auditors and reviewers (docs/audit.md §3); the contracts check again.
"""

from __future__ import annotations

from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.audit_queries import (
    AUDIT_ROLES,
    AuditDenied,
    Auditor,
    authenticate,
    require_auditor,
)
from medalliance.errors import NotFound
from medalliance.web.staff import Staff

__all__ = ["commission_caller", "require_reviewer"]


def commission_caller(network: AllianceNetwork, staff: Staff) -> Auditor:
    """The proven auditor or reviewer behind `staff`. Raises `AuditDenied` (403) for a
    hospital's staff, an operator, or an identity without its own certificate and key."""
    config = network.layout.config
    try:
        org = config.organization(staff.msp_id)
    except NotFound:
        raise AuditDenied(f"{staff.msp_id} is not an organisation of this alliance") from None
    if org.type != "regulator" or staff.role not in AUDIT_ROLES:
        raise AuditDenied(
            "the commission pages are for the reviewers and auditors of a health commission; "
            f"{staff.identity} of {staff.msp_id} is {staff.role or 'without a role'} of a "
            f"{org.type} organisation"
        )
    caller = authenticate(network.layout, staff.msp_id, staff.identity)
    require_auditor(config, caller)
    return caller


def require_reviewer(caller: Auditor) -> None:
    """`AuditDenied` unless the proven caller is a reviewer: auditors read, reviewers decide."""
    if caller.role != "reviewer":
        raise AuditDenied(
            f"only a commission's reviewer decides applications and sets rules; {caller.user} "
            f"of {caller.msp_id} is {caller.role}"
        )
