"""Which organisations must endorse: the smallest set whose peers satisfy a policy.

Fabric's gateway derives an endorsement plan from the contract's policy and the peers it knows.
Here each organisation contributes one endorsing peer, and one endorsement satisfies at most one
principal (Fabric's greedy `used` rule), so `AND('A.peer', 'A.member')` needs two peers of A
and is not planned. A policy given as a channel policy reference (`/Channel/Application/
Endorsement`, Fabric's default) is the channel default, a MAJORITY of member organisations.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from fabric_protos.peer import policy_pb2

from medalliance.errors import PreconditionFailed

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
                used = [False] * len(orgs)
                if _satisfies(envelope.rule, principals, orgs, used):
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


def _principal_org(principal: msp_principal_pb2.MSPPrincipal) -> str | None:
    """The organisation whose peers satisfy this principal; None if no peer can."""
    if principal.principal_classification != _ROLE:
        return None
    role = msp_principal_pb2.MSPRole()
    role.ParseFromString(principal.principal)
    return str(role.msp_identifier) if role.role in _PEER_ROLES else None


def _satisfies(
    rule: policies_pb2.SignaturePolicy,
    principals: Sequence[str | None],
    orgs: Sequence[str],
    used: list[bool],
) -> bool:
    if rule.WhichOneof("Type") == "signed_by":
        index = int(rule.signed_by)
        wanted = principals[index] if index < len(principals) else None
        for i, org in enumerate(orgs):
            if not used[i] and org == wanted:
                used[i] = True
                return True
        return False
    count = 0
    for sub in rule.n_out_of.rules:
        trial = list(used)
        if _satisfies(sub, principals, orgs, trial):
            used[:] = trial
            count += 1
    return count >= int(rule.n_out_of.n)
