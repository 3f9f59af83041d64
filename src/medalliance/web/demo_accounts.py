"""The demo's staff accounts: one per web-capable MSP user of every organisation served.

Usernames read as role.organisation, from the first label of the organisation's domain:
`doctor.secondarya` (User1 of SecondaryHospitalA), `clerk.tertiaryb`, `reviewer.districthc`,
`auditor.cityhc`, `operator.tertiarya` (the organisation's Admin).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

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


def fresh_demo_accounts(
    store: AccountStore, config: NetworkConfig, organizations: tuple[str, ...]
) -> list[DemoLogin]:
    """Every demo identity's account with a fresh random password (created, or its password
    replaced: each `demo --serve` prints the logins that work now)."""
    existing = {a.username for a in store.all()}
    logins = []
    for login in demo_identities(config, organizations):
        password = secrets.token_urlsafe(12)
        if login.username in existing:
            store.set_password(login.username, password)
        else:
            store.add(config, login.username, login.organization, login.identity, password)
        logins.append(
            DemoLogin(login.username, login.organization, login.identity, login.role, password)
        )
    return logins


def write_logins(path: Path, logins: list[DemoLogin]) -> None:
    """The logins as JSON {username: password}, readable by the owner only."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump({login.username: login.password for login in logins}, out, indent=2)
