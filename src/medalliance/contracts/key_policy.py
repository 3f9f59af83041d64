"""Key-level endorsement policies for contracts: build them, and say which ones a simulation hit.

A contract gives a key its own policy with `ctx.stub.set_state_validation_parameter(key,
key_policy("AND('A.peer', 'B.peer')"))` (Fabric's state-based endorsement). The endorser reports,
with each endorsement, the committed policies of the keys the simulation wrote
(`chaincode_interest`, Fabric's `ProposalResponse.interest`), so that a gateway can endorse on
every organisation those policies name. Pure: no I/O beyond reading committed state.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabric_protos.common import policies_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import proposal_response_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import ContractError, PolicySyntaxError
from medalliance.identity.policy import parse_policy
from medalliance.ledger.state import VALIDATION_PARAMETER, StateReader


def key_policy(dsl: str) -> bytes:
    """A serialized SignaturePolicyEnvelope from Fabric's policy language.

    Raises `ContractError` (400) when the text does not parse, so a contract's refusal says so.
    """
    try:
        return bytes(parse_policy(dsl).SerializeToString())
    except PolicySyntaxError as exc:
        raise ContractError(f"endorsement policy does not parse: {exc}", 400) from None


def peers_policy(required: Sequence[str], one_of: Sequence[str] = ()) -> str:
    """DSL text: a peer of each `required` MSP id AND (when `one_of` is given) a peer of one of
    `one_of`. Duplicates are dropped, in order, so one organisation never has to sign twice."""
    must = list(dict.fromkeys(required))
    others = [o for o in dict.fromkeys(one_of) if o not in must]
    terms = [f"'{msp}.peer'" for msp in must]
    if others:
        terms.append(f"OutOf(1, {', '.join(repr(f'{o}.peer') for o in others)})")
    if not terms:
        raise ContractError("a key policy needs at least one organisation", 500)
    return terms[0] if len(terms) == 1 else f"AND({', '.join(terms)})"


def chaincode_interest(
    rwset: bytes, invoked: str, state: StateReader
) -> proposal_response_pb2.ChaincodeInterest:
    """Which policies an endorsement of this read-write set must satisfy, beyond the invoked
    contract's: per namespace written, the distinct committed key policies of its written keys,
    and whether every written key has one (then the namespace's own policy is not needed)."""
    interest = proposal_response_pb2.ChaincodeInterest()
    txrw = rwset_pb2.TxReadWriteSet()
    txrw.ParseFromString(rwset)
    names = set()
    for ns in txrw.ns_rwset:
        kv = kv_rwset_pb2.KVRWSet()
        kv.ParseFromString(ns.rwset)
        keys = sorted({w.key for w in kv.writes} | {m.key for m in kv.metadata_writes})
        if not keys:
            continue
        names.add(ns.namespace)
        call = interest.chaincodes.add(name=ns.namespace)
        seen: set[bytes] = set()
        all_keyed = True
        for key in keys:
            parameter = state.get_metadata(ns.namespace, key).get(VALIDATION_PARAMETER)
            if parameter is None:
                all_keyed = False
            elif parameter not in seen:
                seen.add(parameter)
                try:
                    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(parameter)
                except DecodeError:
                    continue  # never satisfiable: validation refuses the write whoever endorses
                call.key_policies.append(envelope)
        call.disregard_namespace_policy = all_keyed
    if invoked not in names:
        interest.chaincodes.add(name=invoked)
    return interest
