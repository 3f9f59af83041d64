"""`PrivateData` requests: signed by an authorised organisation, bound to purpose and bundle."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from tests.conftest import NOW, make_org
from tests.unit.contracts.fakes import DictState

from medalliance.errors import InvalidArgument, MedallianceError, PermissionDenied
from medalliance.identity.msp import MspManager
from medalliance.node.package_holding import Held
from medalliance.node.private_data import PrivateDataService, signed_push, signed_request
from medalliance.privacy.envelope import SealedPackage, seal
from medalliance.privacy.keys import RecipientKey, key_id
from medalliance.privacy.record_ledger import NAMESPACE, record_key, version_key

ORGS = {m: make_org(m) for m in ("AMSP", "BMSP", "OutsiderMSP")}
KEYS = {m: ec.generate_private_key(ec.SECP256R1()) for m in ("AMSP", "BMSP")}


def recipient(msp_id: str) -> RecipientKey:
    public = KEYS[msp_id].public_key()
    return RecipientKey(msp_id, key_id(public), public)


@dataclasses.dataclass
class _Config:
    msps: MspManager


@dataclasses.dataclass
class _Channel:
    config: _Config
    state: DictState


@pytest.fixture
def service(tmp_path: Path) -> tuple[PrivateDataService, Held]:
    package = seal(b"clinical", record_id="R-1", version=1,
                   recipients=[recipient("AMSP"), recipient("BMSP")])  # fmt: skip
    state = DictState()
    entry = {"digest": package.digest, "attachments": [], "keys": package.key_commitments}
    record = {"authorised": ["AMSP", "BMSP"], "erased": False}
    state.put(NAMESPACE, version_key("R-1", 1), json.dumps(entry).encode())
    state.put(NAMESPACE, record_key("R-1"), json.dumps(record).encode())
    channel = _Channel(_Config(MspManager([o.msp for o in ORGS.values()])), state)
    svc = PrivateDataService(
        msp_id="BMSP",
        directory=tmp_path,
        records_channel="alliance",
        channel=lambda _: channel,  # type: ignore[arg-type,return-value]
        peers=dict,
        tls=None,  # type: ignore[arg-type]  # no peer calls: nothing is forwarded here
        signer=ORGS["BMSP"].signer("peer0"),
        now=lambda: NOW,
    )
    return svc, Held(package.to_bytes(), ())


def push_by(org: str, held: Held, *, at: dt.datetime = NOW, forward: bool = False) -> bytes:
    package = SealedPackage.from_bytes(held.sealed)
    return signed_push(ORGS[org].signer("User1"), held, package, at, forward=forward)


def test_a_push_from_an_authorised_organisation_is_kept(
    service: tuple[PrivateDataService, Held],
) -> None:
    svc, held = service
    answer = asyncio.run(svc._push(json.loads(push_by("AMSP", held))))
    assert answer == {"held": True, "forwardedTo": []}
    assert svc.holding.versions_held("R-1") == 1


def _unsigned(held: Held) -> bytes:
    return json.dumps(
        {"sealed": base64.b64encode(held.sealed).decode(), "attachments": []}
    ).encode()


def _other_bundle(held: Held) -> bytes:
    message = json.loads(push_by("AMSP", held))
    message["attachments"] = [base64.b64encode(b"planted").decode()]
    return json.dumps(message).encode()


@pytest.mark.parametrize(
    ("build", "error", "words"),
    [
        pytest.param(_unsigned, PermissionDenied, "must be signed", id="an unsigned push"),
        pytest.param(lambda h: push_by("OutsiderMSP", h), PermissionDenied, "OutsiderMSP is not authorised for record R-1", id="a push by a non-party"),
        pytest.param(_other_bundle, InvalidArgument, "not the one the request signature covers", id="a bundle other than the signed one"),
        pytest.param(lambda h: signed_request(ORGS["AMSP"].signer("User1"), "R-1", 1, NOW), InvalidArgument, "signed for 'push'", id="a signed fetch replayed as a push"),
        pytest.param(lambda h: push_by("AMSP", h, at=NOW - dt.timedelta(hours=1)), PermissionDenied, "15 minutes", id="a stale push"),
    ],
)  # fmt: skip
def test_pushes_that_are_refused_keep_nothing(
    service: tuple[PrivateDataService, Held],
    build: Callable[[Held], bytes],
    error: type[MedallianceError],
    words: str,
) -> None:
    svc, held = service
    message = json.loads(build(held))
    if "sealed" not in message:
        message.update(sealed=base64.b64encode(held.sealed).decode(), attachments=[])
    with pytest.raises(error, match=words):
        asyncio.run(svc._push(message))
    assert svc.holding.versions_held("R-1") == 0
