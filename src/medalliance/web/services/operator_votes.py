"""Membership votes (app/channel_update.py): an operator proposes a channel configuration change,
the admins of the other organisations sign it, and one submits it to the ordering service.

Pending votes are the update files `channel propose-update` writes, kept in the network folder
(`DIR/web/votes/<vote id>.json`, the vote id being the first 16 hex of the update's SHA-256),
so every organisation's `serve` beside the same folder sees them. Proposing reads the channel's
configuration in force from the operator's own peer; signing adds the operator organisation's
admin signature (once per organisation); submitting broadcasts it as the admin and waits for
its block, after which the vote file is removed. The ordering service, not this page, decides
whether the signatures satisfy `/Channel/Admins` (a majority of the members' admins).

The embedded demo's in-process ordering stage applies no configuration updates: there a vote can
be proposed and signed but submitting it is refused with what to do instead.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from fabric_protos.common import common_pb2, configtx_pb2

from medalliance.app import channel_update
from medalliance.app.alliance_network import AllianceNetwork
from medalliance.app.audit_report import write_atomically
from medalliance.errors import Conflict, InvalidArgument, NotFound, Unavailable
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.web.services.operator_nodes import latest_config_block
from medalliance.web.services.operator_staff import require_operator
from medalliance.web.services.peer_height import embedded_of
from medalliance.web.staff import Staff

__all__ = ["VOTE_CHANGES", "Vote", "VoteSubmitted", "pending_votes", "propose",
           "propose_revocation", "sign", "submit"]  # fmt: skip

VOTE_CHANGES = ("add-org", "remove-org", "add-orderer", "remove-orderer")
_VOTE_ID = re.compile(r"[0-9a-f]{16}")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


@dataclass(frozen=True, slots=True)
class Vote:
    vote_id: str
    channel: str
    description: str
    signers: tuple[str, ...]  # e.g. "Admin@TertiaryAMSP"
    needed: int  # a majority of the channel's member organisations
    signed_by_me: bool


@dataclass(frozen=True, slots=True)
class VoteSubmitted:
    vote_id: str
    description: str
    tx_id: str
    block: int


def pending_votes(network: AllianceNetwork, staff: Staff) -> tuple[Vote, ...]:
    """Every pending vote of the network folder, by vote id."""
    msp_id = require_operator(staff)
    folder = _folder(network)
    needed = _needed(network, msp_id)
    votes = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else ():
        if _VOTE_ID.fullmatch(path.stem):
            votes.append(_vote(path.stem, channel_update.UpdateFile.load(path), needed, msp_id))
    return tuple(votes)


def propose(network: AllianceNetwork, staff: Staff, change: str, target: str) -> Vote:
    """A new vote on `change` (one of `VOTE_CHANGES`) of `target` (an organisation of the
    network folder, or an ordering node's name), made against the configuration in force."""
    msp_id = require_operator(staff)
    if change not in VOTE_CHANGES:
        raise InvalidArgument(f"the change must be one of {', '.join(VOTE_CHANGES)}")
    if not _NAME.fullmatch(target):
        raise InvalidArgument("name the organisation or ordering node (letters, digits, ._-)")
    block = latest_config_block(network, msp_id)
    config = _config_of(block)
    update = channel_update.propose(
        network.layout, msp_id, network.channel, config=config,
        add_org=target if change == "add-org" else None,
        remove_org=target if change == "remove-org" else None,
        add_orderer=target if change == "add-orderer" else None,
        remove_orderer=target if change == "remove-orderer" else None,
    )  # fmt: skip
    return _pending(network, update, msp_id)


def _pending(network: AllianceNetwork, update: channel_update.UpdateFile, msp_id: str) -> Vote:
    """Keep a new update as a pending vote; `Conflict` when the same change is pending."""
    vote_id = hashlib.sha256(update.update).hexdigest()[:16]
    path = _folder(network) / f"{vote_id}.json"
    if path.exists():
        raise Conflict(f"the same change is already pending as vote {vote_id}; sign that one")
    _save(update, path)
    return _vote(vote_id, update, _needed(network, msp_id), msp_id)


def propose_revocation(network: AllianceNetwork, staff: Staff, crl_pem: bytes) -> Vote:
    """A new vote putting every serial of the organisation's CA's CRL (`crl_pem`, from its
    Fabric CA: web/services/operator_ca.py) on the channel's CRL for the operator's MSP, made
    against the configuration in force."""
    msp_id = require_operator(staff)
    config = _config_of(latest_config_block(network, msp_id))
    update = channel_update.propose(
        network.layout, msp_id, network.channel, config=config, revoke=crl_pem
    )
    return _pending(network, update, msp_id)


def sign(network: AllianceNetwork, staff: Staff, vote_id: str) -> Vote:
    """Add the operator organisation's admin signature to a pending vote (once)."""
    msp_id = require_operator(staff)
    path = _path(network, vote_id)
    update = channel_update.UpdateFile.load(path)
    if f"{channel_update.ADMIN}@{msp_id}" in (s["signer"] for s in update.signatures):
        raise Conflict(f"{msp_id} has already signed vote {vote_id}")
    update = channel_update.sign(network.layout, msp_id, update)
    _save(update, path)
    return _vote(vote_id, update, _needed(network, msp_id), msp_id)


def submit(network: AllianceNetwork, staff: Staff, vote_id: str) -> VoteSubmitted:
    """Send a vote to the ordering service and wait for its block; the vote file goes.
    Refused (`Unavailable`) on the embedded demo, whose ordering stage applies no updates."""
    msp_id = require_operator(staff)
    path = _path(network, vote_id)
    update = channel_update.UpdateFile.load(path)
    if embedded_of(network) is not None:
        raise Unavailable(
            "the embedded demo's ordering stage applies no configuration updates; run the "
            "network as processes (`medalliance network up`) and submit the vote there"
        )
    tx_id, block = channel_update.submit(network.layout, msp_id, update)
    path.unlink(missing_ok=True)
    return VoteSubmitted(vote_id, update.description, tx_id, block)


def _folder(network: AllianceNetwork) -> Path:
    return network.layout.directory / "web" / "votes"


def _path(network: AllianceNetwork, vote_id: str) -> Path:
    if not _VOTE_ID.fullmatch(vote_id):
        raise InvalidArgument("a vote id is 16 lower-case hex digits; pick one from the list")
    path = _folder(network) / f"{vote_id}.json"
    if not path.exists():
        raise NotFound(f"no pending vote {vote_id}; it may have been submitted already")
    return path


def _save(update: channel_update.UpdateFile, path: Path) -> None:
    # Written whole or not at all (a reader never sees half a vote).
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    update.save(tmp)
    write_atomically(path, tmp.read_bytes())
    tmp.unlink(missing_ok=True)


def _vote(vote_id: str, update: channel_update.UpdateFile, needed: int, msp_id: str) -> Vote:
    signers = tuple(str(s["signer"]) for s in update.signatures)
    return Vote(
        vote_id, update.channel, update.description, signers, needed,
        f"{channel_update.ADMIN}@{msp_id}" in signers,
    )  # fmt: skip


def _needed(network: AllianceNetwork, msp_id: str) -> int:
    members = ChannelConfig.from_block(latest_config_block(network, msp_id)).application_msp_ids
    return len(members) // 2 + 1


def _config_of(block: common_pb2.Block) -> configtx_pb2.Config:
    payload = common_pb2.Payload.FromString(
        common_pb2.Envelope.FromString(block.data.data[0]).payload
    )
    return configtx_pb2.ConfigEnvelope.FromString(payload.data).config
