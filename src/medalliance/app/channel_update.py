"""Membership by vote: propose a channel configuration change, collect admins' signatures, submit.

An update file (JSON) travels between the organisations' admins:
`{channel, description, update (base64 ConfigUpdate), signatures: [{signer, signatureHeader,
signature}]}`. `propose` reads the channel's configuration from the proposer's own peer and
writes the change (add or remove an organisation, remove an ordering node, revoke a
certificate of the proposer's organisation); `sign` adds one admin's
signature; `submit` sends it to an ordering node as a CONFIG_UPDATE transaction and waits until
it is in a block. The ordering service applies it only if the signatures satisfy the channel's
`/Channel/Admins` (a majority of the organisations' admins, docs/consensus.md); every node uses
the new configuration from the next block on.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2, configtx_pb2, configuration_pb2
from fabric_protos.orderer import ab_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from medalliance.app.peer_commits import wait_for_block
from medalliance.app.session import connect_as, user_signer
from medalliance.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    category_of_fabric,
)
from medalliance.identity.ca import CertificateAuthority
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.msp import Msp
from medalliance.ledger.channel_config import ChannelConfig, consenter_mapping, org_group
from medalliance.ledger.commit_certificate import Consenter
from medalliance.ledger.config_update import (
    CONFIG_UPDATE,
    is_config_block,
    propose_update,
    sign_update,
    update_envelope,
)
from medalliance.ledger.tx import compute_tx_id, sign_envelope
from medalliance.node import launcher
from medalliance.node.bootstrap import NetworkLayout, org_definition

ADMIN = "Admin"
WAIT_S = 60.0


@dataclass
class UpdateFile:
    channel: str
    description: str
    update: bytes = field(repr=False)
    signatures: list[dict[str, str]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        document = {
            "channel": self.channel,
            "description": self.description,
            "update": base64.b64encode(self.update).decode(),
            "signatures": self.signatures,
        }
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> UpdateFile:
        try:
            doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                str(doc["channel"]),
                str(doc["description"]),
                base64.b64decode(doc["update"], validate=True),
                [dict(s) for s in doc["signatures"]],
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"{path} is not an update file ({exc})") from None


def current_config(layout: NetworkLayout, org: str, channel: str) -> configtx_pb2.Config:
    """The channel's configuration as the organisation's own peer has committed it."""
    height = _peer_height(layout, org, channel)
    latest: common_pb2.Block | None = None
    with (
        connect_as(layout, org, ADMIN) as gateway,
        gateway.get_network(channel).get_block_events(start_block=0) as blocks,
    ):
        for block in blocks:
            if is_config_block(block):
                latest = block
            if block.header.number >= height - 1:
                break
    if latest is None:
        raise NotFound(f"no config block of {channel} found")
    payload = common_pb2.Payload.FromString(
        common_pb2.Envelope.FromString(latest.data.data[0]).payload
    )
    return configtx_pb2.ConfigEnvelope.FromString(payload.data).config


def propose(
    layout: NetworkLayout,
    org: str,
    channel: str,
    *,
    remove_org: str | None = None,
    remove_orderer: str | None = None,
    add_org: str | None = None,
    revoke: bytes | None = None,
    add_orderer: str | None = None,
    config: configtx_pb2.Config | None = None,
) -> UpdateFile:
    """An update adding an organisation of the network folder (`network add-org`) to the
    channel, removing one, or removing an ordering node from its consenter set, made against
    the current configuration (`config`, when the caller has read it already, e.g. from an
    embedded peer; else read from the organisation's peer over the Gateway)."""
    changes = (remove_org, remove_orderer, add_org, revoke, add_orderer)
    if sum(x is not None for x in changes) != 1:
        raise InvalidArgument(
            "say what to change: --add-org ORG, --remove-org ORG, --add-orderer NODE, "
            "--remove-orderer NODE or --revoke CERT"
        )
    if config is None:
        config = current_config(layout, org, channel)
    parsed = ChannelConfig.from_config(config, channel)
    group = configtx_pb2.ConfigGroup()
    group.CopyFrom(config.channel_group)
    if revoke is not None:
        description = _revoke(layout, org, group, revoke, channel)
    elif add_orderer is not None:
        if add_orderer in {c.name for c in parsed.consenter_set}:
            raise InvalidArgument(f"{add_orderer} is already a consenter of {channel}")
        kept = [*parsed.consenter_set, _new_consenter(layout, add_orderer, parsed)]
        _set_consenters(layout, group, kept)
        description = f"add ordering node {add_orderer} to {channel}"
    elif add_org is not None:
        joining = layout.config.organization(add_org)
        application = group.groups["Application"]
        if joining.msp_id in application.groups:
            raise InvalidArgument(f"{joining.msp_id} is already a member of channel {channel}")
        msp = Msp.from_dir(layout.org_msp_dir(joining.msp_id), joining.msp_id)
        definition = org_definition(layout.config, joining, msp, orderer=False)
        application.groups[joining.msp_id].CopyFrom(org_group(definition, orderer=False))
        description = f"add organisation {joining.msp_id} to {channel}"
    elif remove_org is not None:
        msp_id = layout.config.organization(remove_org).msp_id
        application = group.groups["Application"]
        if msp_id not in application.groups:
            raise NotFound(f"{msp_id} is not a member of channel {channel}")
        del application.groups[msp_id]
        description = f"remove organisation {msp_id} from {channel}"
    else:
        names = [c.name for c in parsed.consenter_set]
        if remove_orderer not in names:
            raise NotFound(f"{remove_orderer} is not a consenter of {channel}; consenters: {names}")
        kept = [c for c in parsed.consenter_set if c.name != remove_orderer]
        _set_consenters(layout, group, kept)
        description = f"remove ordering node {remove_orderer} from {channel}"
    return UpdateFile(channel, description, propose_update(parsed, group))


def _new_consenter(layout: NetworkLayout, name: str, current: ChannelConfig) -> Consenter:
    """An ordering node of the network folder (`network add-orderer`) as a new consenter; ids
    are never reused."""
    for org in layout.config.orderer_organizations():
        for node in org.orderers:
            if f"{node.name}.{org.domain}" == name:
                node_dir = layout.orderer_dir(org.msp_id, node.name)
                host, _, port = node.cluster_endpoint.rpartition(":")  # consensus dials it
                tls_cert = (node_dir / "tls" / "server.crt").read_bytes()
                return Consenter(
                    max((c.id for c in current.consenter_set), default=0) + 1,
                    name,
                    host,
                    int(port),
                    org.msp_id,
                    load_signer(node_dir / "msp", org.msp_id).serialized_identity,
                    tls_cert,
                    tls_cert,
                )
    raise NotFound(f"no ordering node {name} in the network folder; run `network add-orderer`")


def _set_consenters(
    layout: NetworkLayout, group: configtx_pb2.ConfigGroup, consenters: list[Consenter]
) -> None:
    """The consenter mapping (cluster ports) and the orderer addresses (client ports: where
    clients and peers broadcast and pull blocks) of a channel group."""
    group.groups["Orderer"].values["Orderers"].value = consenter_mapping(
        consenters
    ).SerializeToString()
    clients = {
        f"{node.name}.{org.domain}": node.endpoint
        for org in layout.config.orderer_organizations()
        for node in org.orderers
    }
    missing = [c.name for c in consenters if c.name not in clients]
    if missing:
        raise NotFound(
            f"no ordering node {', '.join(missing)} in the network folder's config; a consenter's "
            "client port is read from there (run `network add-orderer` first)"
        )
    group.values["OrdererAddresses"].value = configuration_pb2.OrdererAddresses(
        addresses=[clients[c.name] for c in consenters]
    ).SerializeToString()


def _revoke(
    layout: NetworkLayout, org: str, group: configtx_pb2.ConfigGroup, pem: bytes, channel: str
) -> str:
    """Put a certificate of the proposer's organisation on its MSP's revocation list: a new
    CRL, signed by the organisation's CA, with every serial revoked so far and this one. `pem`
    may also be the organisation's Fabric CA's CRL (`identity revoke` writes it,
    docs/fabric-ca.md): then every serial it lists is added."""
    msp_id = layout.config.organization(org).msp_id
    application = group.groups["Application"]
    if msp_id not in application.groups:
        raise NotFound(f"{msp_id} is not a member of channel {channel}")
    value = application.groups[msp_id].values["MSP"]
    msp = Msp.from_proto_bytes(value.value)
    ca_dir = layout.org_dir(msp_id) / "ca"
    ca = CertificateAuthority.load(
        next(ca_dir.glob("*-cert.pem")).read_bytes(), (ca_dir / "priv_sk").read_bytes()
    )
    added, subject = _serials_to_revoke(pem, ca, msp_id)
    serials = sorted(msp.revoked_serials | added)
    crl = ca.revoke(serials, now=dt.datetime.now(dt.UTC))
    value.value = replace(msp, crls=(crl,)).to_proto_bytes()
    return f"revoke {subject} of {msp_id} on {channel}"


def _serials_to_revoke(pem: bytes, ca: CertificateAuthority, msp_id: str) -> tuple[set[int], str]:
    """The serials a certificate or a CRL of `ca` revokes, and what to call them."""
    if b"-----BEGIN X509 CRL-----" in pem:
        try:
            crl = x509.load_pem_x509_crl(pem)
        except ValueError:
            raise InvalidArgument("--revoke's CRL is not valid PEM") from None
        key = ca.certificate.public_key()
        signed = isinstance(key, ec.EllipticCurvePublicKey) and crl.is_signature_valid(key)
        if crl.issuer != ca.certificate.subject or not signed:
            raise InvalidArgument(f"the CRL is not signed by {msp_id}'s CA; its admin revokes")
        serials = {revoked.serial_number for revoked in crl}
        if not serials:
            raise InvalidArgument("the CRL revokes no certificate; nothing to propose")
        return serials, f"the {len(serials)} certificate(s) of its CA's CRL"
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise InvalidArgument("--revoke takes a PEM certificate or CRL") from None
    if cert.issuer != ca.certificate.subject:
        raise InvalidArgument(
            f"the certificate was not issued by {msp_id}'s CA; its admin revokes it"
        )
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {cert.serial_number}, str(names[0].value) if names else f"serial {cert.serial_number}"


def sign(layout: NetworkLayout, org: str, update: UpdateFile) -> UpdateFile:
    """Add the signature of the organisation's admin."""
    signer = user_signer(layout, org, ADMIN)
    signed = sign_update(update.update, signer, os.urandom(24))
    update.signatures.append(
        {
            "signer": f"{ADMIN}@{signer.msp_id}",
            "signatureHeader": base64.b64encode(signed.signature_header).decode(),
            "signature": base64.b64encode(signed.signature).decode(),
        }
    )
    return update


def submit(layout: NetworkLayout, org: str, update: UpdateFile) -> tuple[str, int]:
    """Send the update to an ordering node as the organisation's admin; (tx id, block)."""
    signer = user_signer(layout, org, ADMIN)
    signatures = [
        configtx_pb2.ConfigSignature(
            signature_header=base64.b64decode(s["signatureHeader"]),
            signature=base64.b64decode(s["signature"]),
        )
        for s in update.signatures
    ]
    nonce = os.urandom(24)
    tx_id = compute_tx_id(nonce, signer.serialized_identity)
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    header = common_pb2.ChannelHeader(
        type=CONFIG_UPDATE,
        channel_id=update.channel,
        tx_id=tx_id,
        timestamp=Timestamp(seconds=now_ms // 1000, nanos=(now_ms % 1000) * 1_000_000),
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=header.SerializeToString(),
            signature_header=common_pb2.SignatureHeader(
                creator=signer.serialized_identity, nonce=nonce
            ).SerializeToString(),
        ),
        data=update_envelope(update.update, signatures).SerializeToString(),
    )
    envelope = common_pb2.Envelope.FromString(sign_envelope(payload.SerializeToString(), signer))
    _broadcast(layout, org, envelope)
    block = _wait_committed(layout, org, update.channel, tx_id)
    # The next step (a member acting under the new rules) may go through any peer.
    wait_for_block(layout, update.channel, block)
    return tx_id, block


def _broadcast(layout: NetworkLayout, org: str, envelope: common_pb2.Envelope) -> None:
    """Broadcast to the first ordering node that takes the update, over mutual TLS as the
    admin; a node that cannot answer or answers SERVICE_UNAVAILABLE is passed over."""
    tls = layout.user_dir(layout.config.organization(org).msp_id, ADMIN) / "tls"
    failures = []
    for orderer_org in layout.config.orderer_organizations():
        ca = next((layout.org_msp_dir(orderer_org.msp_id) / "tlscacerts").glob("*.pem"))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.read_bytes(),
            private_key=(tls / "client.key").read_bytes(),
            certificate_chain=(tls / "client.crt").read_bytes(),
        )
        for node in orderer_org.orderers:
            name = f"{node.name}.{orderer_org.domain}"
            options = [("grpc.ssl_target_name_override", name)]
            with grpc.secure_channel(node.endpoint, credentials, options=options) as channel:
                stub = ab_pb2_grpc.AtomicBroadcastStub(channel)
                try:
                    (response,) = list(stub.Broadcast(iter([envelope]), timeout=10))
                except grpc.RpcError as exc:
                    failures.append(f"{name}: {exc.code().name}")
                    continue
            retry = broadcast_outcome(name, response.status, response.info)
            if retry is None:
                return
            failures.append(retry)
    raise Unavailable("no ordering node took the update: " + "; ".join(failures))


def broadcast_outcome(name: str, status: int, info: str) -> str | None:
    """What an ordering node's Broadcast answer means for the update: None when it took it; the
    reason to record and try the next node when it answered SERVICE_UNAVAILABLE (retired,
    restarting its consensus core, overloaded: Fabric's clients try another node); any other
    status raises at once with its category, since a refused update is refused everywhere (and
    trying a forbidden one on every node is what a probe looks like)."""
    if status == common_pb2.Status.SUCCESS:
        return None
    known = common_pb2.Status.DESCRIPTOR.values_by_number.get(status)
    label = known.name if known else f"UNKNOWN({status})"
    if label == "SERVICE_UNAVAILABLE":
        return f"{name}: SERVICE_UNAVAILABLE ({info})"
    kind = category_of_fabric(label)
    raise kind(f"the ordering service refused the update ({name}: {label}): {info}")


def _wait_committed(layout: NetworkLayout, org: str, channel: str, tx_id: str) -> int:
    with connect_as(layout, org, ADMIN) as gateway:
        status = gateway.get_network(channel).get_commit_status(tx_id, timeout=WAIT_S)
    if not status.successful:
        raise PermissionDenied(
            f"the update reached block {status.block_number} but was refused there"
        )
    return status.block_number


def _peer_height(layout: NetworkLayout, org: str, channel: str) -> int:
    msp_id = layout.config.organization(org).msp_id
    for node in launcher.nodes_of(layout):
        if node.organization == msp_id and node.role == "peer":
            answer = launcher.probe(node)
            if answer and channel in answer.get("channels", {}):
                return int(answer["channels"][channel])
    raise Unavailable(f"no peer of {msp_id} answers; is the network up?")
