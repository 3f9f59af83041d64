"""Who is logged in: a person acting as one MSP identity of one organisation, with its role.

Free of the web framework, so the service layer (web/services/) takes the same `Staff` the
routes get from web/auth.py without depending on FastAPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from medalliance.web.accounts import Account

Role = Literal["doctor", "clerk", "reviewer", "auditor", "operator"]
HOSPITAL_ROLES = ("doctor", "clerk")
COMMISSION_ROLES = ("reviewer", "auditor")
# Where `/` sends each role; the pages there belong to the hospital and commission parts.
HOME = {
    "doctor": "/hospital/",
    "clerk": "/hospital/",
    "reviewer": "/commission/",
    "auditor": "/commission/",
    "operator": "/operator/",
}


@dataclass(frozen=True, slots=True)
class Staff:
    """A logged-in person, acting as `identity` of `organization` (what they sign as)."""

    username: str
    organization: str  # the organisation's name in the network config
    msp_id: str
    identity: str  # the MSP user, e.g. "User1"
    role: Role
    language: str

    @classmethod
    def of(cls, account: Account) -> Staff:
        role: Role = account.role  # type: ignore[assignment]  # accounts.ROLES holds only these
        return cls(
            account.username, account.organization, account.msp_id, account.identity, role,
            account.language,
        )  # fmt: skip

    @property
    def home(self) -> str:
        return HOME[self.role]
