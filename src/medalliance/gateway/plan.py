"""Which organisations must endorse: the smallest set whose peers satisfy a policy.

Fabric's gateway derives an endorsement plan from the contract's policy and the peers it knows.
Here each organisation contributes one endorsing peer, and one endorsement satisfies at most one
principal (Fabric's greedy `used` rule), so `AND('A.peer', 'A.member')` needs two peers of A
and is not planned. A policy given as a channel policy reference (`/Channel/Application/
Endorsement`, Fabric's default) is the channel default, a MAJORITY of member organisations.

Key-level policies (Fabric's state-based endorsement) arrive with the first endorsements, in
`ProposalResponse.interest`: `extend_plan` then finds the fewest further organisations whose
peers, with those already asked, satisfy the contract policies and every key policy at once.
Organisations a key policy names may endorse even when they do not endorse contracts (a
regulator deciding for itself or for a secondary hospital it supervises).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from fabric_protos.peer import policy_pb2, proposal_response_pb2

from medalliance.contracts.collections import Collection
from medalliance.contracts.lifecycle import LIFECYCLE_NAMESPACE, committed_definition
from medalliance.errors import PreconditionFailed
from medalliance.identity.policy import rule_satisfied
from medalliance.ledger.state import StateReader

# Whether the peers of these organisations (one each) satisfy a policy.
Requirement = Callable[[Sequence[str]], bool]

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
    return _plan_endorsers(bytes(application_policy), tuple(candidates), tuple(members))


# Plans and requirements are pure functions of the policy's bytes and the organisations: kept
# per distinct arguments (every endorsement of a contract asks the same), so a new definition or
# channel configuration, which changes them, is planned afresh. Failures are not kept.
@functools.lru_cache(maxsize=256)
def _plan_endorsers(
    application_policy: bytes, candidates: tuple[str, ...], members: tuple[str, ...]
) -> tuple[str, ...]:
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


def signature_requirement(envelope: policies_pb2.SignaturePolicyEnvelope) -> Requirement:
    principals = [_principal_org(p) for p in envelope.identities]
    return lambda orgs: rule_satisfied(envelope.rule, len(orgs), _org_matcher(principals, orgs))


def application_requirement(application_policy: bytes, members: Sequence[str]) -> Requirement:
    """A contract's policy; a channel policy reference means a majority of `members`."""
    return _application_requirement(bytes(application_policy), tuple(members))


@functools.lru_cache(maxsize=256)
def _application_requirement(application_policy: bytes, members: tuple[str, ...]) -> Requirement:
    policy = policy_pb2.ApplicationPolicy()
    policy.ParseFromString(application_policy)
    if policy.WhichOneof("Type") == "signature_policy":
        return signature_requirement(policy.signature_policy)
    return majority_requirement(members)


def majority_requirement(members: Sequence[str]) -> Requirement:
    needed = len(members) // 2 + 1
    return lambda orgs: len(set(orgs) & set(members)) >= needed


def namespace_requirement(state: StateReader, name: str, members: Sequence[str]) -> Requirement:
    """The committed policy of contract `name` as a plan requirement (`_lifecycle`: majority);
    a contract with no active definition can never be satisfied."""
    if name == LIFECYCLE_NAMESPACE:
        return majority_requirement(members)
    definition = committed_definition(state, name)
    if definition is None or definition.deregistered:
        return lambda orgs: False
    return application_requirement(definition.endorsement_policy, members)


def interest_requirements(
    interest: proposal_response_pb2.ChaincodeInterest,
    namespace_policy: Callable[[str], Requirement],
) -> list[Requirement]:
    """What an endorsement's interest asks for: each key policy it lists, and the policy of
    each namespace it names unless every key written there has its own
    (`disregard_namespace_policy`)."""
    found: list[Requirement] = []
    for call in interest.chaincodes:
        found.extend(signature_requirement(p) for p in call.key_policies)
        if not call.disregard_namespace_policy:
            found.append(namespace_policy(call.name))
    return found


def named_orgs(interest: proposal_response_pb2.ChaincodeInterest) -> list[str]:
    """The organisations whose peers the key policies of an interest name, in order."""
    names: dict[str, None] = {}
    for call in interest.chaincodes:
        for envelope in call.key_policies:
            for principal in envelope.identities:
                org = _principal_org(principal)
                if org is not None:
                    names.setdefault(org)
    return list(names)


def extend_plan(
    requirements: Iterable[Requirement], candidates: Sequence[str], chosen: Sequence[str]
) -> tuple[str, ...]:
    """`chosen` plus the fewest further `candidates` (in order of preference) with which every
    requirement holds. Raises `PreconditionFailed` when no such set exists."""
    needs = list(requirements)
    rest = [c for c in dict.fromkeys(candidates) if c not in chosen]
    for size in range(len(rest) + 1):
        for extra in itertools.combinations(rest, size):
            orgs = (*chosen, *extra)
            if all(need(orgs) for need in needs):
                return orgs
    raise PreconditionFailed(
        "no combination of peers can be derived which satisfy the endorsement policies of the "
        "contract and of the keys it writes (organisations that can endorse: "
        f"{', '.join(dict.fromkeys([*chosen, *candidates])) or 'none'})"
    )


def every_plan(
    requirements: Iterable[Requirement],
    candidates: Sequence[str],
    *,
    limit: int,
    budget: int,
) -> list[tuple[str, ...]]:
    """Every minimal set of `candidates` with which all requirements hold, smallest first
    (Fabric discovery's endorsement layouts): a set is minimal when no set found before it is
    part of it. At most `limit` sets, and at most `budget` combinations are tried, so a policy
    over many organisations costs a bounded time; empty when none was found in the budget."""
    needs = list(requirements)
    orgs = list(dict.fromkeys(candidates))
    found: list[tuple[str, ...]] = []
    tried = 0
    for size in range(1, len(orgs) + 1):
        for combination in itertools.combinations(orgs, size):
            if any(set(plan) <= set(combination) for plan in found):
                continue  # a smaller set already satisfies: this one is not minimal
            tried += 1
            if tried > budget:
                return found
            if all(need(combination) for need in needs):
                found.append(combination)
                if len(found) >= limit:
                    return found
    return found


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


# --- private data collections ---------------------------------------------------------------------

CollectionsOf = Callable[[str], Mapping[str, Collection]]


def collection_requirements(
    interest: proposal_response_pb2.ChaincodeInterest,
    collections: CollectionsOf,
    members: Sequence[str],
    *,
    protect: bool = False,
) -> list[Requirement]:
    """What the collections of an interest ask for, as Fabric's discovery reads them: each
    collection's own endorsement policy, and, for a collection read privately, that every
    endorser be of a member organisation (a non-member's peer holds no value to read). With
    `protect` (the proposal carries transient data) a collection only written also needs member
    endorsers, so the transient data reaches no other organisation (Fabric's gateway).

    Raises `PreconditionFailed` for a collection the contract does not define.
    """
    found: list[Requirement] = []
    for call in interest.chaincodes:
        defined = collections(call.name) if call.collection_names else {}
        for name in call.collection_names:
            collection = defined.get(name)
            if collection is None:
                raise PreconditionFailed(
                    f"collection {name} doesn't exist in collection config for chaincode {call.name}"
                )
            if collection.endorsement_policy is not None:
                found.append(application_requirement(collection.endorsement_policy, members))
            if protect or not call.no_private_reads:
                found.append(members_only(collection.members))
    return found


def protected_collections(interest: proposal_response_pb2.ChaincodeInterest) -> list[str]:
    """The collections only written (not read): those `protect` restricts to members."""
    return [
        name
        for call in interest.chaincodes
        if call.no_private_reads
        for name in call.collection_names
    ]


def members_only(members: Iterable[str]) -> Requirement:
    allowed = frozenset(members)
    return lambda orgs: all(org in allowed for org in orgs)
