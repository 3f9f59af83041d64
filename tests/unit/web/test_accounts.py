"""Staff accounts, API tokens and sessions on SQLite and on PostgreSQL (web/accounts.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medalliance.app.demo import default_config_path
from medalliance.database_url import parse_database_url
from medalliance.errors import ConfigError, Conflict, InvalidArgument, NotFound
from medalliance.node.config import NetworkConfig, load_network_config
from medalliance.web.accounts import AccountStore, LoginRefused, TokenRefused

PASSWORD = "a long enough password"


@pytest.fixture(scope="module")
def config() -> NetworkConfig:
    return load_network_config(default_config_path())


@pytest.fixture
def store(database_url: str) -> AccountStore:
    return AccountStore(parse_database_url(database_url))


def test_an_account_signs_as_its_identity_and_the_password_is_hashed(
    store: AccountStore, config: NetworkConfig, database_url: str
) -> None:
    account = store.add(config, "doctor.wang", "SecondaryAMSP", "User1", PASSWORD)
    assert (account.organization, account.msp_id, account.role) == (
        "SecondaryHospitalA", "SecondaryAMSP", "doctor",
    )  # fmt: skip
    assert store.verify("doctor.wang", PASSWORD) == account
    with pytest.raises(LoginRefused):
        store.verify("doctor.wang", PASSWORD + "x")
    with pytest.raises(LoginRefused):
        store.verify("nobody", PASSWORD)  # the same refusal for an unknown name
    if database_url.startswith("sqlite"):
        raw = parse_database_url(database_url).path.read_bytes()  # type: ignore[union-attr]
        assert PASSWORD.encode() not in raw
        assert b"$argon2id$" in raw


@pytest.mark.parametrize(
    ("username", "org", "identity", "password", "error"),
    [
        ("Doctor Wang", "SecondaryHospitalA", "User1", PASSWORD, InvalidArgument),
        ("doctor.li", "SecondaryHospitalA", "User1", "short", InvalidArgument),
        ("doctor.li", "SecondaryHospitalA", "Nobody1", PASSWORD, NotFound),
        ("doctor.li", "NoSuchHospital", "User1", PASSWORD, ConfigError),
        ("doctor.li", "CityHC", "User1", PASSWORD, InvalidArgument),
        ("admin.taken", "CityHC", "Admin", PASSWORD, Conflict),
    ],
    ids=[
        "a username with spaces and capitals is refused",
        "a short password is refused",
        "an identity the organisation lacks is refused",
        "an unknown organisation is refused",
        "an identity without a web role is refused",
        "a taken username is refused",
    ],
)
def test_a_bad_account_is_refused_and_nothing_is_added(
    tmp_path: Path, config: NetworkConfig, username: str, org: str, identity: str,
    password: str, error: type[Exception],
) -> None:  # fmt: skip
    store = AccountStore(parse_database_url(str(tmp_path / "accounts.db")))  # rules, not storage
    store.add(config, "admin.taken", "CityHC", "Admin", PASSWORD)
    with pytest.raises(error):
        store.add(config, username, org, identity, password)
    assert [a.username for a in store.all()] == ["admin.taken"]


def test_tokens_and_sessions_end_with_the_account(
    store: AccountStore, config: NetworkConfig
) -> None:
    account = store.add(config, "clerk.zhao", "TertiaryHospitalB", "Clerk1", PASSWORD)
    issued = store.issue_token("clerk.zhao", "HIS")
    assert store.account_for_token(issued.token) == account
    assert issued.token not in repr(issued)
    session_id, csrf = store.open_session(account, now=100.0)
    info = store.session(session_id, now=200.0, idle_seconds=1800)
    assert info is not None
    assert info.csrf == csrf
    store.disable("clerk.zhao")
    with pytest.raises(TokenRefused):
        store.account_for_token(issued.token)
    assert store.session(session_id, now=201.0, idle_seconds=1800) is None
    with pytest.raises(LoginRefused):
        store.verify("clerk.zhao", PASSWORD)


def test_a_new_password_ends_every_session(store: AccountStore, config: NetworkConfig) -> None:
    account = store.add(config, "reviewer.sun", "DistrictHC", "Reviewer1", PASSWORD)
    session_id, _ = store.open_session(account, now=0.0)
    store.set_password("reviewer.sun", "another long password")
    assert store.session(session_id, now=1.0, idle_seconds=1800) is None
    assert store.verify("reviewer.sun", "another long password") == account
