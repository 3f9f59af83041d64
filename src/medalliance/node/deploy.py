"""Deploy a network's configured contracts through the lifecycle, as its admins would.

For each contract of each channel: every member organisation's admin approves the definition,
then one commits it once a majority approved (Fabric's lifecycle, architecture §4). A definition
already committed with the same package and version is left alone, so reopening a network
deploys nothing twice; a changed one is upgraded to the next sequence. Peers install the
configured packages themselves; the package id is the same everywhere (a hash of the bytes).

In a split set-up (docs/deployment.md) each organisation deploys with its own admin only
(`organizations`): it approves for itself, and commits once a majority has approved, so the
organisation whose `network deploy --org` brings the last approval needed commits the definition.
Organisations deploying at the same time race to commit; one whose approval or commit is refused
because another committed the same definition meanwhile goes on with the next contract.

The admins' access to the network is a `LifecycleSession`: in process for the embedded network,
the Gateway API for a network of processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol

from fabric_protos.peer.lifecycle import lifecycle_pb2

from medalliance.contracts.lifecycle import application_policy, approve_args, commit_args
from medalliance.contracts.package import build_package, package_id
from medalliance.errors import MedallianceError, PreconditionFailed
from medalliance.ledger.tx import Code
from medalliance.node.config import ChannelSpec, NetworkConfig

ADMIN = "Admin"
MVCC_READ_CONFLICT = Code.Value("MVCC_READ_CONFLICT")
COMMIT_ATTEMPTS = 3
CATCH_UP_S = 15.0  # how long a refused deploy waits to see another organisation's commit


class LifecycleSession(Protocol):
    """One organisation admin's access to the `_lifecycle` contract of a channel."""

    def submit(self, channel: str, function: str, arg: bytes) -> str:
        """Endorse and order a lifecycle transaction; returns its tx id without waiting."""
        ...

    def wait(self, channel: str, tx_id: str) -> int:
        """The validation code of a submitted transaction, once committed."""
        ...

    def query(self, channel: str, function: str, arg: str | bytes) -> bytes | None:
        """Evaluate a lifecycle query; None when the contract answers 'not found'."""
        ...


@dataclass(frozen=True, slots=True)
class _Change:
    """One contract whose committed definition differs from the configured one."""

    name: str
    version: str
    sequence: int
    package_id: str
    policy: bytes
    approve: bytes
    commit: bytes


def deploy_contracts(
    config: NetworkConfig,
    session: Callable[[str], LifecycleSession],
    on_progress: Callable[[str], None] | None = None,
    organizations: Collection[str] | None = None,
) -> list[str]:
    """Bring every configured contract to its configured definition; returns what changed.

    `organizations` (MSP ids): approve only for these and commit only once the channel's
    majority has approved; None: every member approves at once (one folder with all admins).

    The contracts of a channel move together: every approval of every changed contract is
    submitted before any is waited for, then every commit, so a channel of nine contracts
    takes two rounds of ordering rather than eighteen (each contract has its own lifecycle
    keys, so transactions of different contracts in one block do not conflict)."""
    changed: list[str] = []
    for channel in config.channels:
        members = [o.msp_id for o in config.members(channel)]
        approvers = [m for m in members if organizations is None or m in organizations]
        if not approvers:
            continue
        first = session(approvers[0])
        changes = _changes(config, channel, first, on_progress)
        refused: list[tuple[_Change, MedallianceError]] = []
        approvals = []
        for change in changes:
            for msp_id in approvers:
                try:
                    tx_id = session(msp_id).submit(
                        channel.name, "ApproveChaincodeDefinitionForMyOrg", change.approve
                    )
                except MedallianceError as exc:
                    refused.append((change, exc))
                    continue
                approvals.append((msp_id, change, tx_id))
        for msp_id, change, tx_id in approvals:
            code = session(msp_id).wait(channel.name, tx_id)
            if code != 0:
                failed = f"{msp_id} approving {change.name} on {channel.name} failed with code"
                refused.append((change, PreconditionFailed(f"{failed} {code}")))
        changes = _unless_committed_elsewhere(
            first, channel.name, changes, refused, on_progress, racing=organizations is not None
        )
        refused = []
        if organizations is not None:
            awaiting = []
            for change in changes:
                try:
                    if not _ready(first, channel.name, change):
                        awaiting.append(change)
                except MedallianceError as exc:  # committed by another organisation meanwhile?
                    refused.append((change, exc))
            changes = _unless_committed_elsewhere(
                first, channel.name, changes, refused, on_progress, racing=True
            )
            refused = []
            for change in awaiting:
                if on_progress:
                    on_progress(
                        f"{change.name} on {channel.name} awaits other organisations' "
                        "approvals; the `network deploy --org` bringing the last one commits it"
                    )
            changes = [c for c in changes if c not in awaiting]
        # An endorser that has not committed every approval yet reads them at older versions
        # and the commit is invalidated (MVCC): nothing was written, so submit it again.
        waiting = changes
        for _ in range(COMMIT_ATTEMPTS):
            submitted = []
            for change in waiting:
                try:
                    tx_id = first.submit(channel.name, "CommitChaincodeDefinition", change.commit)
                except MedallianceError as exc:
                    refused.append((change, exc))
                    continue
                submitted.append((change, tx_id))
            codes = [(change, first.wait(channel.name, tx_id)) for change, tx_id in submitted]
            for change, code in codes:
                if code not in (0, MVCC_READ_CONFLICT):
                    refused.append((change, _commit_failed(change, channel.name, code)))
            waiting = [change for change, code in codes if code == MVCC_READ_CONFLICT]
            if not waiting:
                break
        refused += [(c, _commit_failed(c, channel.name, MVCC_READ_CONFLICT)) for c in waiting]
        changes = _unless_committed_elsewhere(
            first, channel.name, changes, refused, on_progress, racing=organizations is not None
        )
        changed.extend(f"{channel.name}/{change.name}" for change in changes)
    return changed


def _changes(
    config: NetworkConfig,
    channel: ChannelSpec,
    first: LifecycleSession,
    on_progress: Callable[[str], None] | None,
) -> list[_Change]:
    """The channel's contracts whose committed definition is missing or another one; a
    definition committed with the same package and version is left alone."""
    changes = []
    for spec in channel.contracts:
        label = spec.package_label
        wanted_id = package_id(build_package(label, spec.package), label)
        current = _definition(first, channel.name, spec.name)
        if _is_configured(current, spec.version, wanted_id):
            continue
        sequence = (int(current["sequence"]) if current else 0) + 1
        if on_progress:
            on_progress(
                f"deploying {spec.name} {spec.version} on {channel.name} (sequence {sequence})"
            )
        policy = application_policy(config.endorsement_policy(channel, spec))
        approve = approve_args(
            name=spec.name,
            version=spec.version,
            sequence=sequence,
            policy=policy,
            package_id=wanted_id,
            external=False,
            collections=spec.collections_package,
        )
        commit = commit_args(
            name=spec.name,
            version=spec.version,
            sequence=sequence,
            policy=policy,
            external=False,
            collections=spec.collections_package,
        )
        changes.append(
            _Change(spec.name, spec.version, sequence, wanted_id, policy, approve, commit)
        )
    return changes


def _unless_committed_elsewhere(
    session: LifecycleSession,
    channel: str,
    changes: list[_Change],
    refused: list[tuple[_Change, MedallianceError]],
    on_progress: Callable[[str], None] | None,
    *,
    racing: bool,
) -> list[_Change]:
    """`changes` without those refused because another organisation, deploying at the same
    time on its own machine (`racing`: a split set-up), committed the same definition
    meanwhile; any other refusal is raised."""
    done: set[str] = set()
    for change, error in refused:
        if change.name in done:
            continue
        if not racing or not _shows_committed(session, channel, change):
            raise error
        done.add(change.name)
        if on_progress:
            on_progress(f"{change.name} on {channel} was committed by another organisation")
    return [c for c in changes if c.name not in done]


def _shows_committed(session: LifecycleSession, channel: str, change: _Change) -> bool:
    """Whether the session's peer shows the definition committed, waiting up to
    `CATCH_UP_S` for it: the endorsers that refused it may have committed a block (another
    organisation's commit) that this peer has not received yet."""
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        current = _definition(session, channel, change.name)
        if _is_configured(current, change.version, change.package_id):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)  # the polling interval


def _definition(session: LifecycleSession, channel: str, name: str) -> dict[str, Any] | None:
    """The contract's committed definition as the session's peer has it; None if none."""
    raw = session.query(channel, "QueryChaincodeDefinition", name)
    found: dict[str, Any] | None = json.loads(raw) if raw else None
    return found


def _is_configured(current: dict[str, Any] | None, version: str, wanted_id: str) -> bool:
    return (
        current is not None
        and not current["deregistered"]
        and current["version"] == version
        and current["package_id"] == wanted_id
    )


def _ready(session: LifecycleSession, channel: str, change: _Change) -> bool:
    """Whether a majority of the channel's organisations approved the definition (as the
    session's own peer has committed it: its own approval, just waited for, comes after every
    earlier one, so a peer that shows it shows those too)."""
    args = lifecycle_pb2.CheckCommitReadinessArgs(
        sequence=change.sequence,
        name=change.name,
        version=change.version,
        validation_parameter=change.policy,
    ).SerializeToString()
    raw = session.query(channel, "CheckCommitReadiness", args)
    approvals: dict[str, bool] = json.loads(raw)["approvals"] if raw else {}
    return sum(approvals.values()) >= len(approvals) // 2 + 1


def _commit_failed(change: _Change, channel: str, code: int) -> PreconditionFailed:
    return PreconditionFailed(f"committing {change.name} on {channel} failed with code {code}")
