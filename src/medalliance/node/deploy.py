"""Deploy a network's configured contracts through the lifecycle, as its admins would.

For each contract of each channel: install the package on every member peer, have each member
organisation's admin approve the definition, then commit it once a majority approved (Fabric's
lifecycle, architecture §4). A definition already committed with the same package and version is
left alone, so reopening a network deploys nothing twice; a changed one is upgraded to the next
sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fabric_protos.peer import policy_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2

from medalliance.contracts.lifecycle import LIFECYCLE_NAMESPACE, committed_definition
from medalliance.contracts.package import build_package
from medalliance.errors import PreconditionFailed
from medalliance.identity.policy import parse_policy

if TYPE_CHECKING:
    from medalliance.node.embedded import EmbeddedNetwork

ADMIN = "Admin"


def deploy_contracts(
    network: EmbeddedNetwork, on_progress: Callable[[str], None] | None = None
) -> list[str]:
    """Bring every configured contract to its configured definition; returns what changed."""
    changed = []
    for channel in network.config.channels:
        peers = network.peers_of(channel.name)
        members = peers[0].channel(channel.name).config.application_msp_ids
        for spec in channel.contracts:
            package = build_package(spec.label or f"{spec.name}_{spec.version}", spec.package)
            package_ids = {peer.packages.install(package) for peer in peers}
            (package_id,) = package_ids  # same bytes, same id on every peer
            state = peers[0].channel(channel.name).state
            current = committed_definition(state, spec.name)
            if (
                current is not None
                and not current.deregistered
                and current.version == spec.version
                and current.package_id == package_id
            ):
                continue
            sequence = (current.sequence if current else 0) + 1
            if on_progress:
                on_progress(
                    f"deploying {spec.name} {spec.version} on {channel.name} (sequence {sequence})"
                )
            policy = policy_pb2.ApplicationPolicy(
                signature_policy=parse_policy(network.config.endorsement_policy(channel, spec))
            ).SerializeToString()
            approve = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs(
                sequence=sequence,
                name=spec.name,
                version=spec.version,
                validation_parameter=policy,
                source=lifecycle_pb2.ChaincodeSource(
                    local_package=lifecycle_pb2.ChaincodeSource.Local(package_id=package_id)
                ),
            ).SerializeToString()
            for msp_id in members:
                network.client(msp_id, ADMIN).submit(
                    channel.name,
                    LIFECYCLE_NAMESPACE,
                    "ApproveChaincodeDefinitionForMyOrg",
                    approve,
                    wait=False,
                )
            network.cut_blocks(channel.name)
            commit = lifecycle_pb2.CommitChaincodeDefinitionArgs(
                sequence=sequence,
                name=spec.name,
                version=spec.version,
                validation_parameter=policy,
            ).SerializeToString()
            result = network.client(members[0], ADMIN).submit(
                channel.name, LIFECYCLE_NAMESPACE, "CommitChaincodeDefinition", commit
            )
            if not result.valid:
                raise PreconditionFailed(
                    f"committing {spec.name} on {channel.name} failed with code {result.code}"
                )
            changed.append(f"{channel.name}/{spec.name}")
    return changed
