"""Chaincode as a service for an organisation admin: install a ccaas package on the
organisation's peers, approve its definition for the organisation, commit it.

An external chaincode's package names the organisation's own chaincode server, so each
organisation installs and approves its own package id; the agreed definition holds name,
version, sequence and endorsement policy (contracts/lifecycle.py, docs/chaincode-as-a-service.md).
Installing writes into the peers' package folders: a running peer finds the package when a
definition first names it, no restart needed.
"""

from __future__ import annotations

from medalliance.app.session import GatewayAdminSession, contract_refusal
from medalliance.contracts.lifecycle import application_policy, approve_args, commit_args
from medalliance.contracts.package import PackageStore
from medalliance.errors import PreconditionFailed
from medalliance.node.bootstrap import NODES, NetworkLayout
from medalliance.sdk import GatewayError

APPROVE = "ApproveChaincodeDefinitionForMyOrg"
COMMIT = "CommitChaincodeDefinition"


def install_package(
    layout: NetworkLayout, organization: str, package: bytes
) -> tuple[str, list[str]]:
    """Install `package` (ccaas or Python) on every peer of `organization`; its id and the
    peers' host names."""
    org = layout.config.organization(organization)
    hosts = [f"{peer.name}.{org.domain}" for peer in org.peers]
    if not hosts:
        raise PreconditionFailed(f"organisation {org.name} has no peers to install on")
    ids = {
        PackageStore(layout.directory / NODES / host / "packages").install(package)
        for host in hosts
    }
    (package_id,) = ids
    return package_id, hosts


def approve_external(
    layout: NetworkLayout,
    organization: str,
    channel: str,
    *,
    name: str,
    version: str,
    sequence: int,
    package_id: str,
    policy: str,
    collections: bytes = b"",
) -> tuple[str, int]:
    """Approve an external chaincode's definition for `organization` with its own package id;
    the transaction id and its validation code (0: valid)."""
    args = approve_args(
        name=name,
        version=version,
        sequence=sequence,
        policy=application_policy(policy),
        package_id=package_id,
        external=True,
        collections=collections,
    )
    return _submit(layout, organization, channel, APPROVE, args)


def commit_external(
    layout: NetworkLayout,
    organization: str,
    channel: str,
    *,
    name: str,
    version: str,
    sequence: int,
    policy: str,
    collections: bytes = b"",
) -> tuple[str, int]:
    """Commit an external chaincode's definition once a majority approved it."""
    args = commit_args(
        name=name,
        version=version,
        sequence=sequence,
        policy=application_policy(policy),
        external=True,
        collections=collections,
    )
    return _submit(layout, organization, channel, COMMIT, args)


def _submit(
    layout: NetworkLayout, organization: str, channel: str, function: str, arg: bytes
) -> tuple[str, int]:
    msp_id = layout.config.organization(organization).msp_id
    session = GatewayAdminSession(layout, msp_id)
    try:
        tx_id = session.submit(channel, function, arg)
        return tx_id, session.wait(channel, tx_id)
    except GatewayError as exc:
        raise contract_refusal(exc) from None
    finally:
        session.close()
