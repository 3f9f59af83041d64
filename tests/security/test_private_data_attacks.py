"""Attacks on private data, played against the demo alliance as processes (issue 11, items 2, 3, 10).

SecondaryA shares records with TertiaryB (DistrictHC, their regulator, is a party by rule). A
hostile member then tries to erase them with an event alone, to plant or swap a copy through
`PrivateData/Push`, and to file an erasure for a patient that is not its own. Each attack is
refused with its reason, and afterwards every party still holds the same bytes and opens the
record. Finally a genuine erasure leaves no copy on any holder and a receipt from each.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2

from medalliance.app.packages import get_bundle
from medalliance.app.session import connect_as, own_peer, user_signer
from medalliance.identity.cryptogen import load_signer
from medalliance.ledger.tx import (
    new_proposal_response,
    new_signed_proposal,
    new_transaction_payload,
    parse_signed_proposal,
    sign_envelope,
)
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.package_holding import Held
from medalliance.node.private_data import SERVICE, signed_push
from medalliance.privacy.envelope import SealedPackage, WrappedKey, seal
from medalliance.privacy.keys import recipient_key
from tests.networks import DEMO_ALLIANCE, cli, cli_json, running, wait_until, with_free_ports

OWNER, TARGET, REGULATOR, OUTSIDER = (
    "SecondaryAMSP",
    "TertiaryBMSP",
    "DistrictHCMSP",
    "SecondaryBMSP",
)
PARTIES = (OWNER, TARGET, REGULATOR)
CHANNEL = "alliance"


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("pd-attacks")
    with running(with_free_ports(DEMO_ALLIANCE, base / "network.yaml"), base) as directory:
        yield directory


@dataclasses.dataclass(frozen=True)
class Shared:
    record: str
    patient: str
    sealed: bytes = dataclasses.field(repr=False)
    attachment: bytes = dataclasses.field(repr=False)
    marker: str


def share(alliance: Path, tmp_path: Path, record: str) -> Shared:
    """SecondaryA seals a package (and an attachment) for TertiaryB and shares it."""
    marker = f"MARKER-{record}-{os.urandom(4).hex()}"
    package, image = tmp_path / f"{record}.json", tmp_path / f"{record}.pdf"
    package.write_text(json.dumps({"emr": marker}))
    image.write_bytes(b"%PDF-" + os.urandom(256))
    sealed = tmp_path / f"{record}.sealed"
    d = ("--dir", str(alliance))
    cli("privacy", "encrypt", str(package), *d, "--org", OWNER, "--to", TARGET,
        "--record", record, "--attach", str(image), "-o", str(sealed))  # fmt: skip
    patient = os.urandom(16).hex()
    shared = cli_json("privacy", "share", str(sealed), *d, "--org", OWNER, "--patient-ref", patient)
    assert shared["held_by"] == sorted(PARTIES)
    (attachment,) = [
        p.read_bytes() for p in Path(f"{sealed}.documents/chunks").rglob("*") if p.is_file()
    ]
    return Shared(record, patient, sealed.read_bytes(), attachment, marker)


def every_party_holds_and_opens(alliance: Path, tmp_path: Path, shared: Shared) -> None:
    """Nothing changed: each party's peer holds exactly the shared bytes, and each opens it."""
    layout = NetworkLayout.load(alliance)
    for org in PARTIES:
        held = get_bundle(layout, org, "User1", shared.record, 1)
        assert held.sealed == shared.sealed, org
        out = tmp_path / f"{shared.record}-{org}.json"
        cli("privacy", "fetch", "--dir", str(alliance), "--org", org, "--record", shared.record,
            "-o", str(out))  # fmt: skip
        assert json.loads(out.read_text())["emr"] == shared.marker


def evaluate(alliance: Path, org: str, function: str, *args: str) -> dict[str, object]:
    out = cli("tx", "evaluate", "--dir", str(alliance), "--org", org, "-C", CHANNEL,
              "-n", "records", function, *args).stdout  # fmt: skip
    result: dict[str, object] = json.loads(out)
    return result


def stores(alliance: Path) -> list[Path]:
    return [alliance / "nodes" / f"peer0.{h}.example.com" / "private"
            for h in ("secondarya", "tertiaryb", "districthc")]  # fmt: skip


def traces_left(alliance: Path, shared: Shared) -> list[Path]:
    ciphertext = base64.b64encode(SealedPackage.from_bytes(shared.sealed).ciphertext)
    return [
        path
        for store in stores(alliance)
        for path in store.rglob("*")
        if path.is_file() and any(t in path.read_bytes() for t in (ciphertext, shared.attachment))
    ]


def push(alliance: Path, org: str, message: bytes) -> grpc.RpcError | None:
    """A raw `PrivateData/Push` to `org`'s peer, as any TLS client can send one."""
    endpoint, tls_ca, server_name = own_peer(NetworkLayout.load(alliance), org)
    options = [("grpc.ssl_target_name_override", server_name)]
    with grpc.secure_channel(endpoint, grpc.ssl_channel_credentials(tls_ca), options) as channel:
        call = channel.unary_unary(f"/{SERVICE}/Push")
        try:
            call(message, timeout=30)
        except grpc.RpcError as exc:
            return exc
    return None


def signed_by(alliance: Path, org: str, sealed: bytes, attachment: bytes) -> bytes:
    signer = user_signer(NetworkLayout.load(alliance), org, "User1")
    held = Held(sealed, (attachment,))
    package = SealedPackage.from_bytes(sealed)
    return signed_push(signer, held, package, dt.datetime.now(dt.UTC), forward=True)


# --- item 2: an event alone erases nothing --------------------------------------------------------


def forged_erasure_event(alliance: Path, patient: str, record: str) -> str:
    """A `records` transaction that writes nothing and only emits `ErasureApproved`, endorsed
    by every peer of the alliance (so it is VALID under any endorsement policy: what is tested
    is that holders act on committed state, not on events). Returns its tx id."""
    layout = NetworkLayout.load(alliance)
    creator = user_signer(layout, "TertiaryAMSP", "User1")
    signed, tx_id = new_signed_proposal(
        creator,
        channel_id=CHANNEL,
        chaincode="records",
        args=[b"ApproveErasure", patient.encode()],
        nonce=os.urandom(24),
        timestamp_ms=int(time.time() * 1000),
    )
    proposal = parse_signed_proposal(signed)
    empty = kv_rwset_pb2.KVRWSet().SerializeToString()
    rwset = rwset_pb2.TxReadWriteSet(
        data_model=rwset_pb2.TxReadWriteSet.KV,
        ns_rwset=[rwset_pb2.NsReadWriteSet(namespace="records", rwset=empty)],
    ).SerializeToString()
    event = chaincode_event_pb2.ChaincodeEvent(
        chaincode_id="records",
        tx_id=tx_id,
        event_name="ErasureApproved",
        payload=json.dumps({"patientRef": patient, "records": [record]}).encode(),
    ).SerializeToString()
    responses = [
        new_proposal_response(
            proposal,
            load_signer(layout.peer_dir(org.msp_id, node.name) / "msp", org.msp_id),
            chaincode_version="1.0",
            status=200,
            message="",
            payload=b"{}",
            rwset=rwset,
            event=event,
        )
        for org in layout.config.organizations
        for node in org.peers
    ]
    envelope = common_pb2.Envelope.FromString(
        sign_envelope(new_transaction_payload(proposal, responses), creator)
    )
    endpoint, tls_ca, server_name = own_peer(layout, "TertiaryAMSP")
    options = [("grpc.ssl_target_name_override", server_name)]
    with grpc.secure_channel(endpoint, grpc.ssl_channel_credentials(tls_ca), options) as channel:
        gateway_pb2_grpc.GatewayStub(channel).Submit(
            gateway_pb2.SubmitRequest(
                transaction_id=tx_id, channel_id=CHANNEL, prepared_transaction=envelope
            ),
            timeout=30,
        )
    return tx_id


def test_a_transaction_that_only_emits_erasure_approved_deletes_nothing(
    alliance: Path, tmp_path: Path
) -> None:
    shared = share(alliance, tmp_path, "R-EVENT")
    tx_id = forged_erasure_event(alliance, shared.patient, shared.record)
    layout = NetworkLayout.load(alliance)
    for org in PARTIES:  # each holder's peer has committed the forged transaction
        with connect_as(layout, org) as gateway:
            status = gateway.get_network(CHANNEL).get_commit_status(tx_id, timeout=60)
        assert status.successful, (org, status.code)  # VALID: its event reached every holder
    assert traces_left(alliance, shared)  # the copies and attachments are all still there
    every_party_holds_and_opens(alliance, tmp_path, shared)
    assert evaluate(alliance, REGULATOR, "GetRecord", shared.record)["erased"] is False


# --- item 3: pushes are signed, bound to the ledger, and never replace a copy ---------------------


def swapped_key(alliance: Path, sealed: bytes, victim: str) -> bytes:
    """The package with `victim`'s wrapped key replaced by one the attacker made (a data key
    of its own wrapped for the victim's real encryption key): well-formed, same ciphertext."""
    layout = NetworkLayout.load(alliance)
    package = SealedPackage.from_bytes(sealed)
    key = recipient_key(layout.org_msp_dir(victim), victim, dt.datetime.now(dt.UTC))
    forged = seal(b"x", record_id=package.record_id, version=package.version, recipients=[key])
    wrapped = [w for w in package.wrapped if w.msp_id != victim]
    wrapped.append(WrappedKey(victim, forged.wrapped[0].key_id, forged.wrapped[0].enc))
    return dataclasses.replace(
        package, wrapped=tuple(sorted(wrapped, key=lambda w: w.msp_id))
    ).to_bytes()


def test_unsigned_non_party_and_substituted_pushes_are_refused(
    alliance: Path, tmp_path: Path
) -> None:
    shared = share(alliance, tmp_path, "R-PUSH")
    bundle = {
        "sealed": base64.b64encode(shared.sealed).decode(),
        "attachments": [base64.b64encode(shared.attachment).decode()],
    }
    unsigned = push(alliance, TARGET, json.dumps({**bundle, "forward": True}).encode())
    assert unsigned is not None
    assert unsigned.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "must be signed" in (unsigned.details() or "")

    outsider = push(
        alliance, TARGET, signed_by(alliance, OUTSIDER, shared.sealed, shared.attachment)
    )
    assert outsider is not None
    assert outsider.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"{OUTSIDER} is not authorised for record R-PUSH" in (outsider.details() or "")

    # A party (the owner itself) swaps the regulator's wrapped key, pushing to every holder.
    swapped = swapped_key(alliance, shared.sealed, REGULATOR)
    for org in PARTIES:
        refused = push(alliance, org, signed_by(alliance, OWNER, swapped, shared.attachment))
        assert refused is not None, org
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"wrapped keys for {REGULATOR}" in (refused.details() or "")
        assert "not the ones committed on the ledger" in (refused.details() or "")

    # Nor may a party add a key for an organisation the ledger did not commit one for.
    package = SealedPackage.from_bytes(shared.sealed)
    outsider_key = recipient_key(
        NetworkLayout.load(alliance).org_msp_dir(OUTSIDER), OUTSIDER, dt.datetime.now(dt.UTC)
    )
    extra = seal(b"x", record_id="R-PUSH", version=1, recipients=[outsider_key]).wrapped[0]
    widened = dataclasses.replace(
        package, wrapped=tuple(sorted((*package.wrapped, extra), key=lambda w: w.msp_id))
    ).to_bytes()
    refused = push(alliance, TARGET, signed_by(alliance, TARGET, widened, shared.attachment))
    assert refused is not None
    assert f"wrapped keys for {OUTSIDER}" in (refused.details() or "")

    # A genuine re-push is idempotent, and everything held is unchanged.
    assert (
        push(alliance, TARGET, signed_by(alliance, OWNER, shared.sealed, shared.attachment)) is None
    )
    every_party_holds_and_opens(alliance, tmp_path, shared)


# --- item 10 and erasure ---------------------------------------------------------------------------


def test_a_non_holder_cannot_file_an_erasure_and_a_regulator_rejects_one(
    alliance: Path, tmp_path: Path
) -> None:
    shared = share(alliance, tmp_path, "R-FILE")
    d = ("--dir", str(alliance))
    refused = cli("privacy", "erase", *d, "--org", OUTSIDER, "--patient-ref", shared.patient,
                  check=False)  # fmt: skip
    assert refused.returncode == 4, refused.stderr  # permission denied, at endorsement
    assert f"{OUTSIDER} holds no record of this patient" in refused.stderr
    missing = cli("tx", "evaluate", *d, "--org", REGULATOR, "-C", CHANNEL, "-n", "records",
                  "GetErasure", shared.patient, check=False)  # fmt: skip
    assert missing.returncode != 0
    assert "no erasure was requested" in missing.stderr

    cli("privacy", "erase", *d, "--org", OWNER, "--patient-ref", shared.patient)
    not_theirs = cli("privacy", "erase", *d, "--org", TARGET, "--patient-ref", shared.patient,
                     "--reject", "LEGAL_HOLD", check=False)  # fmt: skip
    assert not_theirs.returncode == 4  # permission denied
    assert f"only the regulator of {OWNER} may reject" in not_theirs.stderr
    rejected = cli_json("privacy", "erase", *d, "--org", REGULATOR, "--patient-ref",
                        shared.patient, "--reject", "LEGAL_HOLD")  # fmt: skip
    assert (rejected["status"], rejected["reason"]) == ("REJECTED", "LEGAL_HOLD")
    every_party_holds_and_opens(alliance, tmp_path, shared)


def test_after_an_approved_erasure_no_holder_holds_it_and_each_filed_a_receipt(
    alliance: Path, tmp_path: Path
) -> None:
    shared = share(alliance, tmp_path, "R-ERASE")
    assert traces_left(alliance, shared)
    d = ("--dir", str(alliance))
    cli("privacy", "erase", *d, "--org", OWNER, "--patient-ref", shared.patient)
    cli("privacy", "erase", *d, "--org", REGULATOR, "--patient-ref", shared.patient, "--approve")
    # each holder's peer deletes when it commits
    wait_until(lambda: not traces_left(alliance, shared), "no holder keeps a copy")
    check = cli("--json", "privacy", "erase", *d, "--org", REGULATOR, "--patient-ref",
                shared.patient, "--check", check=False)  # fmt: skip
    assert check.returncode == 1  # no receipt yet: the check says so, holder by holder
    assert json.loads(check.stdout)["holders"] == dict.fromkeys(sorted(PARTIES), "pending")
    for org in PARTIES:
        confirmed = cli_json("privacy", "erase", *d, "--org", org, "--patient-ref",
                             shared.patient, "--confirm")  # fmt: skip
        assert confirmed == {"confirmed": ["R-ERASE"], "already": []}
    check = cli("--json", "privacy", "erase", *d, "--org", REGULATOR, "--patient-ref",
                shared.patient, "--check", check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    report = json.loads(check.stdout)
    assert report["holders"] == dict.fromkeys(sorted(PARTIES), "confirmed")
    assert set(report["copiesLeft"].values()) == {0}
    assert traces_left(alliance, shared) == []
    receipts = evaluate(alliance, "CityHCMSP", "ErasureReceipts", shared.patient)
    assert receipts["records"]["R-ERASE"] == {"confirmed": sorted(PARTIES), "pending": []}
    gone = cli("privacy", "fetch", *d, "--org", TARGET, "--record", shared.record,
               "-o", str(tmp_path / "gone.json"), check=False)  # fmt: skip
    assert gone.returncode != 0
    assert "erased" in gone.stderr
