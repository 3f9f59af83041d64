"""Which organisations must endorse: the smallest set whose peers satisfy a policy.

Fabric's gateway derives an endorsement plan from the contract's policy and the peers it knows.
Here each organisation contributes one endorsing peer, and one endorsement satisfies at most one
principal (Fabric's greedy `used` rule), so `AND('A.peer', 'A.member')` needs two peers of A
and is not planned. A policy given as a channel policy reference (`/Channel/Application/
Endorsement`, Fabric's default) is the channel default, a MAJORITY of member organisations.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from fabric_protos.msp import msp_principal_pb2
from fabric_protos.peer import policy_pb2

from medalliance.errors import PreconditionFailed
from medalliance.identity.policy import rule_satisfied

_ROLE = msp_principal_pb2.MSPPrincipal.Classification.Value("ROLE")
_PEER_ROLES = {
    msp_principal_pb2.MSPRole.MSPRoleType.Value("MEMBER"),
    msp_principal_pb2.MSPRole.MSPRoleType.Value("PEER"),
}


def plan_endorsers(
    application_policy: bytes, candidates: Sequence[str], members: Sequence[str]
) -> tuple[str, ...]:
    """The fewest of `candidates` (in their order of preference) that satisfy the policy.

    `members` are the channel's organisations, for a policy that references the channel's
    default. Raises `PreconditionFailed` when no combination of candidates can satisfy it.
    """
    policy = policy_pb2.ApplicationPolicy()
    policy.ParseFromString(application_policy)
    if policy.WhichOneof("Type") == "signature_policy":
        envelope = policy.signature_policy
        principals = [_principal_org(p) for p in envelope.identities]
        for size in range(1, len(candidates) + 1):
            for orgs in itertools.combinations(candidates, size):
                if rule_satisfied(envelope.rule, len(orgs), _org_matcher(principals, orgs)):
                    return orgs
        raise PreconditionFailed(
            "no combination of peers can be derived which satisfy the endorsement policy "
            f"(organisations that can endorse: {', '.join(candidates) or 'none'})"
        )
    return majority(candidates, members)


def majority(candidates: Sequence[str], members: Sequence[str]) -> tuple[str, ...]:
    """More than half of `members`, taken from `candidates` in order."""
    needed = len(members) // 2 + 1
    chosen = tuple(c for c in candidates if c in members)[:needed]
    if len(chosen) < needed:
        raise PreconditionFailed(
            f"the policy needs {needed} of {len(members)} organisations to endorse; "
            f"only {len(chosen)} have reachable endorsing peers"
        )
    return chosen


def _org_matcher(
    principals: Sequence[str | None], orgs: Sequence[str]
) -> Callable[[int, int], bool]:
    """Whether the peer of `orgs[signer]` satisfies principal `principal`."""
    return lambda principal, signer: (
        principal < len(principals) and principals[principal] == orgs[signer]
    )


def _principal_org(principal: msp_principal_pb2.MSPPrincipal) -> str | None:
    """The organisation whose peers satisfy this principal; None if no peer can."""
    if principal.principal_classification != _ROLE:
        return None
    role = msp_principal_pb2.MSPRole()
    role.ParseFromString(principal.principal)
    return str(role.msp_identifier) if role.role in _PEER_ROLES else None
