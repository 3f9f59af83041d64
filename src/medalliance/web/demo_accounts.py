"""The demo's staff accounts: one per web-capable MSP user of every organisation served.

Usernames read as role.organisation, from the first label of the organisation's domain:
`doctor.secondarya` (User1 of SecondaryHospitalA), `clerk.tertiaryb`, `reviewer.districthc`,
`auditor.cityhc`, `operator.tertiarya` (the organisation's Admin).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from medalliance.errors import InvalidArgument
from medalliance.node.config import NetworkConfig
from medalliance.web.accounts import ROLES, AccountStore, role_of


@dataclass(frozen=True, slots=True)
class DemoLogin:
    username: str
    organization: str
    identity: str
    role: str
    password: str = field(repr=False)


def demo_identities(config: NetworkConfig, organizations: tuple[str, ...]) -> list[DemoLogin]:
    """(username, organisation, identity, role) of every account the demo creates; no password."""
    out = []
    for name in organizations:
        org = config.organization(name)
        for user in org.all_users:
            try:
                _, _, role = role_of(config, org.name, user.name)
            except InvalidArgument:  # a user without a web role (e.g. a plain client)
                continue
            if role in ROLES:
                username = f"{role}.{org.domain.split('.')[0]}"
                out.append(DemoLogin(username, org.name, user.name, role, ""))
    return out


def create_demo_accounts(
    store: AccountStore, config: NetworkConfig, organizations: tuple[str, ...]
) -> list[DemoLogin]:
    """An account with a fresh random password for every demo identity (new ones only)."""
    existing = {a.username for a in store.all()}
    created = []
    for login in demo_identities(config, organizations):
        if login.username in existing:
            continue
        password = secrets.token_urlsafe(12)
        store.add(config, login.username, login.organization, login.identity, password)
        created.append(
            DemoLogin(login.username, login.organization, login.identity, login.role, password)
        )
    return created
