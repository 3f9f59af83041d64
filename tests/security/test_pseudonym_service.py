"""Attacks on patient pseudonyms (issue 11, item 4), played against the demo alliance as processes.

A hospital reading its whole disk finds no key that computes or tests a pseudonym; the city
commission's pseudonym service answers signed requests of hospital identities only, refuses past
each hospital's rate limit, logs one entry per answered evaluation, and never learns (nor logs)
an identifier; two hospitals still derive the same pseudonym for one patient.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from medalliance.app.pseudonyms import PseudonymClient, evaluate_over_grpc
from medalliance.app.session import own_peer, user_signer
from medalliance.identity.ca import CertificateAuthority
from medalliance.identity.signing import Signer
from medalliance.node.bootstrap import OPRF_KEY, NetworkLayout
from medalliance.node.pseudonym_service import LOG_FILE, SERVICE, evaluate_request
from medalliance.privacy import oprf
from medalliance.privacy.pseudonym import oprf_input, pseudonym_of
from tests.networks import DEMO_ALLIANCE, running, with_free_ports

ID_NUMBER = "11010519491231002X"  # GB 11643's example number, never a real person
A, B, TA, REG = "SecondaryAMSP", "SecondaryBMSP", "TertiaryAMSP", "CityHCMSP"
BURST = 8  # per hospital; refills at 0.01 a minute, so nothing comes back during the test
Answer = tuple[grpc.StatusCode, str]


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkLayout]:
    base = tmp_path_factory.mktemp("pseudonyms")
    config = with_free_ports(DEMO_ALLIANCE, base / "alliance.yaml")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["pseudonym_rate"] = {"burst": BURST, "per_minute": 0.01}
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with running(config, base) as directory:
        yield NetworkLayout.load(directory)


def client(layout: NetworkLayout, org: str, user: str = "User1") -> PseudonymClient:
    return PseudonymClient(lambda elements: evaluate_over_grpc(layout, org, user, elements))


def call(layout: NetworkLayout, request: bytes) -> Answer | bytes:
    """One raw `Evaluate` call to the regulator's peer: its answer, or (status, message)."""
    endpoint, tls_ca, server_name = own_peer(layout, REG)
    with grpc.secure_channel(
        endpoint,
        grpc.ssl_channel_credentials(tls_ca),
        options=[("grpc.ssl_target_name_override", server_name)],
    ) as channel:
        method = channel.unary_unary(f"/{SERVICE}/Evaluate")
        try:
            answer: bytes = method(request, timeout=30)
        except grpc.RpcError as exc:
            return exc.code(), exc.details()
        return answer


def evaluation_log(layout: NetworkLayout) -> list[dict[str, object]]:
    path = layout.directory / "nodes" / "peer0.cityhc.example.com" / "pseudonym" / LOG_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def files_under(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from (p for p in folder.rglob("*") if p.is_file())


def element(data: bytes = b"any input") -> bytes:
    return oprf.blind(data).element


def test_a_hospital_cannot_compute_a_pseudonym_from_its_own_disk(alliance: NetworkLayout) -> None:
    target = client(alliance, A).pseudonym("resident-id", ID_NUMBER)  # what the chain would hold
    key_file = alliance.org_dir(REG) / OPRF_KEY
    key = key_file.read_bytes()
    # The OPRF key exists once, in the regulator's organisation folder: no node folder, no
    # hospital, no other regulator holds it, nor the shared HMAC key of earlier versions.
    holders = [p for p in files_under(alliance.directory) if key in p.read_bytes()]
    assert holders == [key_file]
    assert list(alliance.directory.rglob("alliance.key")) == []
    # Everything secondary hospital A holds: its organisation folder and its peer's folder.
    own = [alliance.org_dir(A), alliance.directory / "nodes" / "peer0.secondarya.example.com"]
    candidates = set()
    for path in files_under(*own):
        content = path.read_bytes()
        if len(content) == 32:
            candidates.add(content)
        if b"PRIVATE KEY" in content:
            private = serialization.load_pem_private_key(content, password=None)
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            candidates.add(private.private_numbers().private_value.to_bytes(32, "big"))
    assert candidates  # the scan found A's signing, TLS and encryption keys
    data = oprf_input("resident-id", ID_NUMBER)
    for secret in candidates:  # none works as the OPRF key, nor as an HMAC key
        scalar = bytes(oprf.hash_to_scalar(secret))
        assert pseudonym_of(oprf.evaluate(oprf.OprfKey(scalar), data)) != target
        assert hmac.new(secret, data, hashlib.sha256).hexdigest()[:32] != target


def test_two_hospitals_derive_the_same_pseudonym(alliance: NetworkLayout) -> None:
    at_a = client(alliance, A).pseudonym("resident-id", ID_NUMBER)
    at_tertiary = client(alliance, TA).pseudonym("resident-id", " 11010519491231002x ")
    assert at_a == at_tertiary
    assert len(at_a) == 32
    assert client(alliance, A).pseudonym("resident-id", "110101199003074514") != at_a


def test_the_regulator_never_sees_nor_logs_an_identifier(alliance: NetworkLayout) -> None:
    sent: list[bytes] = []

    def evaluate(elements: list[bytes]) -> list[bytes]:
        sent.extend(elements)
        return evaluate_over_grpc(alliance, A, "User1", elements)

    PseudonymClient(evaluate).pseudonym("resident-id", ID_NUMBER)
    regulator_files = list(
        files_under(
            alliance.org_dir(REG), alliance.directory / "nodes" / "peer0.cityhc.example.com"
        )
    )
    data = oprf_input("resident-id", ID_NUMBER)
    needles = [ID_NUMBER.encode(), ID_NUMBER[:17].encode(), data, hashlib.sha256(data).digest()]
    for element_sent in sent:  # nor the blinded element, in any spelling
        needles += [element_sent, element_sent.hex().encode(), base64.b64encode(element_sent)]
    for path in regulator_files:
        content = path.read_bytes()
        assert not [n for n in needles if n in content], path
    assert set(evaluation_log(alliance)[-1]) == {"time", "org", "identity", "count"}


def forged_signer(layout: NetworkLayout, kind: str) -> Signer:
    now = dt.datetime.now(dt.UTC)
    if kind == "non-member":
        ca = CertificateAuthority.create("ca.intruder.example.com", "IntruderMSP", now=now)
        issued = ca.issue("User1@intruder.example.com", node_ou="client", now=now)
        return Signer.from_pem("IntruderMSP", issued.cert_pem, issued.key_pem)
    if kind == "foreign CA":  # claims to be hospital A, certified by a CA A does not have
        ca = CertificateAuthority.create("ca.secondarya.example.com", "SecondaryAMSP", now=now)
        issued = ca.issue("User1@secondarya.example.com", node_ou="client", now=now)
        return Signer.from_pem(A, issued.cert_pem, issued.key_pem)
    assert kind == "expired"  # A's own CA (as if A's CA key leaked), but no longer valid
    ca_dir = layout.org_dir(A) / "ca"
    ca_cert = x509.load_pem_x509_certificate(next(ca_dir.glob("*-cert.pem")).read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "priv_sk").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    real = x509.load_pem_x509_certificate(user_signer(layout, A, "User1").cert_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(real.subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Signer.from_pem(A, cert.public_bytes(serialization.Encoding.PEM), key_pem)


def unsigned(layout: NetworkLayout) -> bytes:
    signed = json.loads(evaluate_request(user_signer(layout, A, "User1"), [element()], now()))
    return json.dumps({"request": signed["request"]}).encode()


def bad_signature(layout: NetworkLayout) -> bytes:
    signed = json.loads(evaluate_request(user_signer(layout, A, "User1"), [element()], now()))
    other = json.loads(evaluate_request(user_signer(layout, A, "Clerk1"), [element()], now()))
    return json.dumps({"request": signed["request"], "signature": other["signature"]}).encode()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("attack", "code", "message"),
    [
        pytest.param(lambda la: json.dumps({"elements": [base64.b64encode(element()).decode()]}).encode(), grpc.StatusCode.INVALID_ARGUMENT, "unsigned or malformed pseudonym request", id="a bare, unsigned request is refused"),
        pytest.param(unsigned, grpc.StatusCode.INVALID_ARGUMENT, "unsigned or malformed", id="a request without its signature is refused"),
        pytest.param(bad_signature, grpc.StatusCode.PERMISSION_DENIED, "signature does not verify", id="another user's signature is refused"),
        pytest.param(lambda la: evaluate_request(forged_signer(la, "non-member"), [element()], now()), grpc.StatusCode.PERMISSION_DENIED, "IntruderMSP", id="a non-member's certificate is refused"),
        pytest.param(lambda la: evaluate_request(forged_signer(la, "foreign CA"), [element()], now()), grpc.StatusCode.PERMISSION_DENIED, "not issued by a CA of SecondaryAMSP", id="a hospital's name certified by a foreign CA is refused"),
        pytest.param(lambda la: evaluate_request(forged_signer(la, "expired"), [element()], now()), grpc.StatusCode.PERMISSION_DENIED, "expired|not valid", id="an expired certificate of the hospital's own CA is refused"),
        pytest.param(lambda la: evaluate_request(user_signer(la, "DistrictHCMSP", "Auditor1"), [element()], now()), grpc.StatusCode.PERMISSION_DENIED, "not a hospital", id="a regulator may not evaluate (only hospitals register patients)"),
        pytest.param(lambda la: evaluate_request(user_signer(la, A, "User1"), [element()], now() - dt.timedelta(hours=1)), grpc.StatusCode.PERMISSION_DENIED, "15 minutes", id="a replayed old request is refused"),
        pytest.param(lambda la: evaluate_request(user_signer(la, A, "User1"), [bytes(32)], now()), grpc.StatusCode.INVALID_ARGUMENT, "ristretto255", id="the identity element is refused"),
    ],
)  # fmt: skip
def test_the_service_refuses_unauthenticated_or_foreign_callers(
    alliance: NetworkLayout,
    attack: Callable[[NetworkLayout], bytes],
    code: grpc.StatusCode,
    message: str,
) -> None:
    before = evaluation_log(alliance)
    answer = call(alliance, attack(alliance))
    assert isinstance(answer, tuple), "the service answered an attacker"
    assert answer[0] == code
    assert re.search(message, answer[1]), answer[1]
    assert evaluation_log(alliance) == before  # nothing evaluated, nothing logged


def test_the_service_refuses_past_the_rate_limit_and_logs_every_evaluation(
    alliance: NetworkLayout,
) -> None:
    signer = user_signer(alliance, B, "User1")
    before = evaluation_log(alliance)
    answered = 0
    for size in (3, 3, 2):  # the whole burst, in three requests
        answer = call(alliance, evaluate_request(signer, [element() for _ in range(size)], now()))
        assert isinstance(answer, bytes)
        answered += size
    refused = call(alliance, evaluate_request(signer, [element()], now()))
    assert isinstance(refused, tuple)
    assert refused[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "SecondaryBMSP is past its pseudonym evaluation limit; retry in" in refused[1]
    # the refusal changed nothing: B's pseudonyms through the client fail the same way
    with pytest.raises(Exception, match="past its pseudonym evaluation limit"):
        client(alliance, B).pseudonym("resident-id", ID_NUMBER)
    new = evaluation_log(alliance)[len(before) :]
    assert [(e["org"], e["count"]) for e in new] == [(B, 3), (B, 3), (B, 2)]
    assert sum(int(str(e["count"])) for e in new) == answered == BURST
    assert {e["identity"] for e in new} == {"User1@secondaryb.example.com"}
    # other hospitals have their own buckets
    assert client(alliance, TA).pseudonym("resident-id", ID_NUMBER)
