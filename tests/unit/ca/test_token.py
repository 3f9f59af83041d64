"""Fabric CA's request token and basic auth (ca/token.py): what binds a request to its signer."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from medalliance.ca.token import parse_basic, sign_token, verify_token
from medalliance.errors import CaAuthenticationFailed
from medalliance.identity.ca import CertificateAuthority

NOW = dt.datetime.now(dt.UTC)
_CA = CertificateAuthority.create("ca.t.example.com", "t.example.com", now=NOW)
_KEY = ec.generate_private_key(ec.SECP256R1())
CERT = _CA.certify(_KEY.public_key(), "admin", node_ou="client", now=NOW)
BODY = b'{"id":"u1"}'
TOKEN = sign_token(CERT, _KEY, "POST", "/api/v1/register", BODY)


def test_a_token_verifies_for_its_own_request() -> None:
    assert verify_token(TOKEN, "POST", "/api/v1/register", BODY).serial_number > 0


@pytest.mark.parametrize(
    ("method", "uri", "body"),
    [
        pytest.param("POST", "/api/v1/register", b'{"id":"u2"}', id="another body is refused"),
        pytest.param("POST", "/api/v1/revoke", BODY, id="another endpoint is refused"),
        pytest.param("GET", "/api/v1/register", BODY, id="another method is refused"),
        pytest.param("POST", "/api/v1/register?ca=x", BODY, id="another query is refused"),
    ],
)
def test_a_token_covers_method_uri_and_body(method: str, uri: str, body: bytes) -> None:
    with pytest.raises(CaAuthenticationFailed):
        verify_token(TOKEN, method, uri, body)


def test_a_token_with_a_swapped_certificate_is_refused() -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _CA.certify(other_key.public_key(), "eve", node_ou="client", now=NOW)
    forged = base64.b64encode(other).decode() + "." + TOKEN.split(".")[1]
    with pytest.raises(CaAuthenticationFailed):
        verify_token(forged, "POST", "/api/v1/register", BODY)


@given(st.text(max_size=200))
def test_any_header_is_a_token_or_an_authentication_failure(header: str) -> None:
    with pytest.raises(CaAuthenticationFailed):
        verify_token(header, "POST", "/api/v1/register", BODY)


@given(st.text(max_size=100))
def test_any_basic_header_parses_or_is_an_authentication_failure(header: str) -> None:
    with contextlib.suppress(CaAuthenticationFailed):
        parsed = parse_basic(header)
        assert header.strip().lower().startswith("basic")
        assert base64.b64decode(header.strip()[6:].strip()).decode() == (
            f"{parsed.enrollment_id}:{parsed.secret}"
        )
