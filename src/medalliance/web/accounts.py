"""Staff accounts of the web client, their API tokens and their browser sessions.

An account is a person's login bound to one MSP identity of one organisation of the network
folder (User1, Clerk1, Reviewer1, Auditor1, Admin): what the person does, the web client signs
with that identity. Passwords are hashed with argon2id (memory-hard). API tokens and session ids
are 256-bit random values; only their SHA-256 is stored — a slow hash adds nothing to a value
that cannot be guessed, and every API call checks one. Times arrive as arguments (`now`, seconds).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from medalliance.database_url import DatabaseUrl
from medalliance.errors import InvalidArgument, NotFound, PermissionDenied
from medalliance.node.config import NetworkConfig
from medalliance.web.account_db import AccountDatabase

ROLES = ("doctor", "clerk", "reviewer", "auditor", "operator")
LANGUAGES = ("zh_CN", "en")
MIN_PASSWORD = 10
TOKEN_PREFIX = "mat_"  # noqa: S105 - the prefix that marks our API tokens, not a secret
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the username is unknown, so a refusal takes as long either way (made on
    first use: hashing at import would slow every CLI command)."""
    return _HASHER.hash(secrets.token_hex(16))


class LoginRefused(PermissionDenied):
    """A wrong username, password, disabled account or bad token: one message for all."""

    def __init__(self) -> None:
        super().__init__("wrong username or password, or the account is disabled")


class TokenRefused(PermissionDenied):
    def __init__(self) -> None:
        super().__init__("the API token is unknown, revoked or its account is disabled")


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    organization: str  # the organisation's name in the network config
    msp_id: str
    identity: str  # the MSP user it signs as
    role: str
    language: str
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token_id: str
    token: str = field(repr=False)  # shown once, never stored


@dataclass(frozen=True, slots=True)
class SessionInfo:
    account: Account
    csrf: str = field(repr=False)


def role_of(config: NetworkConfig, organization: str, identity: str) -> tuple[str, str, str]:
    """(organisation name, MSP id, web role) of an MSP user; `NotFound` if the config has none."""
    org = config.organization(organization)
    for user in org.all_users:
        if user.name != identity:
            continue
        if user.admin or user.name == "Admin":
            return org.name, org.msp_id, "operator"
        if user.role in ROLES:
            return org.name, org.msp_id, user.role
        raise InvalidArgument(
            f"{identity}@{org.name} has no web role (its role is {user.role or 'none'}); "
            f"bind the account to a user whose role is one of {', '.join(ROLES[:-1])} or Admin"
        )
    users = ", ".join(u.name for u in org.all_users)
    raise NotFound(f"{org.name} has no user {identity!r}; its users are {users}")


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class AccountStore:
    """Accounts, tokens and sessions in one database (see account_db.py)."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        self._db = AccountDatabase(url)

    def close(self) -> None:
        self._db.close()

    # --- accounts ---------------------------------------------------------------------------

    def add(
        self, config: NetworkConfig, username: str, organization: str, identity: str, password: str,
        language: str = "zh_CN",
    ) -> Account:  # fmt: skip
        """A new account bound to `identity`@`organization`; `Conflict` if the name is taken."""
        if not _USERNAME.match(username):
            raise InvalidArgument(
                "a username is 2-63 characters of a-z, 0-9, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        _check_password(password)
        if language not in LANGUAGES:
            raise InvalidArgument(f"language must be one of {', '.join(LANGUAGES)}")
        name, msp_id, role = role_of(config, organization, identity)
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._db.execute(
            "INSERT INTO accounts (username, organization, msp_id, identity, role, language, "
            "password_hash, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (username, name, msp_id, identity, role, language, _HASHER.hash(password), created),
        )
        return Account(username, name, msp_id, identity, role, language)

    def get(self, username: str) -> Account:
        rows = self._db.execute(
            "SELECT username, organization, msp_id, identity, role, language, disabled "
            "FROM accounts WHERE username = ?",
            (username,),
        )
        if not rows:
            raise NotFound(
                f"no account {username!r}; list them with `medalliance web account list`"
            )
        return _account(rows[0])

    def all(self) -> list[Account]:
        rows = self._db.execute(
            "SELECT username, organization, msp_id, identity, role, language, disabled "
            "FROM accounts ORDER BY organization, username"
        )
        return [_account(row) for row in rows]

    def disable(self, username: str) -> Account:
        """Disable the account and end its sessions; its tokens stop working with it."""
        self.get(username)
        self._db.execute("UPDATE accounts SET disabled = 1 WHERE username = ?", (username,))
        self._db.execute("DELETE FROM sessions WHERE username = ?", (username,))
        return self.get(username)

    def set_password(self, username: str, password: str) -> None:
        """A new password; every session of the account ends."""
        self.get(username)
        _check_password(password)
        self._db.execute(
            "UPDATE accounts SET password_hash = ? WHERE username = ?",
            (_HASHER.hash(password), username),
        )
        self._db.execute("DELETE FROM sessions WHERE username = ?", (username,))

    def set_language(self, username: str, language: str) -> None:
        if language not in LANGUAGES:
            raise InvalidArgument(f"language must be one of {', '.join(LANGUAGES)}")
        self._db.execute(
            "UPDATE accounts SET language = ? WHERE username = ?", (language, username)
        )

    def verify(self, username: str, password: str) -> Account:
        """The account if the password is right and it is enabled, else `LoginRefused`."""
        rows = self._db.execute(
            "SELECT password_hash FROM accounts WHERE username = ?", (username,)
        )
        stored = rows[0][0] if rows else _dummy_hash()
        try:
            _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            raise LoginRefused() from None
        if not rows:
            raise LoginRefused()
        account = self.get(username)
        if account.disabled:
            raise LoginRefused()
        return account

    # --- API tokens -------------------------------------------------------------------------

    def issue_token(self, username: str, label: str = "") -> IssuedToken:
        account = self.get(username)
        if account.disabled:
            raise InvalidArgument(f"account {username!r} is disabled; enable it first")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._db.execute(
            "INSERT INTO tokens (token_id, secret_hash, username, label, created_at, revoked) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            (token_id, _sha(secret), username, label[:100], created),
        )
        return IssuedToken(token_id, f"{TOKEN_PREFIX}{token_id}_{secret}")

    def revoke_token(self, token_id: str) -> None:
        rows = self._db.execute("SELECT 1 FROM tokens WHERE token_id = ?", (token_id,))
        if not rows:
            raise NotFound(
                f"no API token {token_id!r}; list them with `medalliance web token list`"
            )
        self._db.execute("UPDATE tokens SET revoked = 1 WHERE token_id = ?", (token_id,))

    def tokens(self, username: str | None = None) -> list[tuple[str, str, str, str, bool]]:
        """(token id, username, label, created, revoked) of every token (or one account's)."""
        sql = "SELECT token_id, username, label, created_at, revoked FROM tokens"
        rows = self._db.execute(
            sql
            + (" WHERE username = ? ORDER BY created_at" if username else " ORDER BY created_at"),
            (username,) if username else (),
        )
        return [(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def account_for_token(self, token: str) -> Account:
        """The enabled account a valid, unrevoked token is bound to, else `TokenRefused`."""
        if not token.startswith(TOKEN_PREFIX) or "_" not in token[len(TOKEN_PREFIX) :]:
            raise TokenRefused()
        token_id, secret = token[len(TOKEN_PREFIX) :].split("_", 1)
        rows = self._db.execute(
            "SELECT secret_hash, username, revoked FROM tokens WHERE token_id = ?", (token_id,)
        )
        if not rows or rows[0][2] or not hmac.compare_digest(rows[0][0], _sha(secret)):
            raise TokenRefused()
        account = self.get(rows[0][1])
        if account.disabled:
            raise TokenRefused()
        return account

    # --- browser sessions -------------------------------------------------------------------

    def open_session(self, account: Account, now: float) -> tuple[str, str]:
        """(session id for the cookie, CSRF token) of a new session."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self._db.execute(
            "INSERT INTO sessions (session_hash, username, csrf, created, last_seen) "
            "VALUES (?, ?, ?, ?, ?)",
            (_sha(session_id), account.username, csrf, now, now),
        )
        return session_id, csrf

    def session(self, session_id: str, now: float, idle_seconds: float) -> SessionInfo | None:
        """The live session's account and CSRF token (its idle clock restarts), or None when
        unknown, idle too long (then removed) or its account is disabled."""
        key = _sha(session_id)
        rows = self._db.execute(
            "SELECT username, csrf, last_seen FROM sessions WHERE session_hash = ?", (key,)
        )
        if not rows:
            return None
        username, csrf, last_seen = rows[0]
        if now - float(last_seen) > idle_seconds:
            self._db.execute("DELETE FROM sessions WHERE session_hash = ?", (key,))
            return None
        account = self.get(username)
        if account.disabled:
            return None
        self._db.execute("UPDATE sessions SET last_seen = ? WHERE session_hash = ?", (now, key))
        return SessionInfo(account, csrf)

    def close_session(self, session_id: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE session_hash = ?", (_sha(session_id),))


def _account(row: tuple[object, ...]) -> Account:
    username, organization, msp_id, identity, role, language, disabled = row
    return Account(
        str(username), str(organization), str(msp_id), str(identity), str(role), str(language),
        bool(disabled),
    )  # fmt: skip


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidArgument(f"a password needs at least {MIN_PASSWORD} characters")
