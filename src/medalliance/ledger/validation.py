"""Commit-side validation of a block's transactions (protocol doc §4). Pure: no clock, no I/O.

For each envelope, in order: structure, creator signature, tx id, proposal hash, duplicate tx id,
contract definition, endorsement signatures against the endorsement policies, then MVCC over the
whole block.

Endorsement policies follow Fabric's state-based (key-level) endorsement: in each namespace a
transaction writes, every key it writes (a value or metadata) whose committed metadata holds a
`VALIDATION_PARAMETER` needs that policy satisfied; if any written key has none (or the namespace
is only invoked, not written), the contract's own policy must be satisfied too. A metadata write
is judged by the key's current policy, so only those who may write a key may change who may. A
transaction writing a key whose policy an earlier transaction of the same block changed (a
metadata write, or deleting a key that had one) is ENDORSEMENT_POLICY_FAILURE: its endorsers
could not have known the new policy. As in Fabric, "earlier" counts transactions that passed
these checks, before MVCC, so the verdict never depends on the order checks run in. The result is one Fabric `TxValidationCode` per transaction plus the writes
and event of each valid one; the caller commits them atomically.

Certificates are judged at the transaction's own timestamp, so every peer reaches the same verdict
whenever it validates (a wall clock would let two peers disagree about one block). The ordering
service and endorsers check freshness against their clocks when the transaction enters.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fabric_protos.common import common_pb2, policies_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import policy_pb2
from google.protobuf.message import DecodeError

from medalliance.identity.msp import Identity, MspManager
from medalliance.identity.policy import (
    CompiledPolicy,
    SignedData,
    compile_policy,
    compiled_policy_satisfied,
    evaluate_signature_policy,
)
from medalliance.ledger.mvcc import MvccTx, check_block, metadata_writes_of, writes_of
from medalliance.ledger.private_hashing import HashedCollection, parse_hashed
from medalliance.ledger.signed_header import HeaderRejected, check_signed_header
from medalliance.ledger.state import VALIDATION_PARAMETER, MetadataWrite, StateReader, Write
from medalliance.ledger.tx import (
    Code,
    EnvelopeView,
    MalformedTransaction,
    parse_chaincode_event,
    parse_envelopes,
    parse_rwset,
    proposal_hash,
    stamped_at,
)

if TYPE_CHECKING:
    from medalliance.ledger.channel_config import OrgDefinition

VALID = Code.Value("VALID")
LIFECYCLE_NAMESPACE = "_lifecycle"
LIFECYCLE_POLICY = "/Channel/Application/LifecycleEndorsement"


class ChannelPolicies(Protocol):
    """What validation needs of a channel's configuration (implemented by `ChannelConfig`)."""

    @property
    def channel_id(self) -> str: ...

    @property
    def msps(self) -> MspManager: ...

    @property
    def application_msp_ids(self) -> tuple[str, ...]: ...

    @property
    def orgs(self) -> Mapping[str, OrgDefinition]: ...

    def evaluate_policy(
        self, path: str, signed: Sequence[SignedData], *, at: dt.datetime
    ) -> bool: ...

    def satisfied_by(self, path: str, signers: Sequence[Identity]) -> bool: ...


class CollectionPolicy(Protocol):
    """What validation needs of a committed private data collection (`contracts.collections`)."""

    @property
    def members(self) -> frozenset[str]: ...

    @property
    def member_only_write(self) -> bool: ...

    @property
    def endorsement_policy(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class NamespacePolicy:
    """The committed definition facts validation needs for one contract namespace."""

    application_policy: bytes  # serialized peer.ApplicationPolicy
    active: bool = True  # False once deregistered
    collections: Mapping[str, CollectionPolicy] = field(default_factory=dict)


# Returns the committed policy of a contract namespace, or None when none is committed.
PolicyLookup = Callable[[str], NamespacePolicy | None]
# Which of the given tx ids are already on the ledger (one look-up per block, not per tx).
CommittedTxs = Callable[[Sequence[str]], Set[str]]


@dataclass(frozen=True, slots=True)
class TxResult:
    tx_num: int
    tx_id: str
    code: int
    timestamp_ms: int
    chaincode: str = ""
    writes: tuple[Write, ...] = field(default=(), repr=False)
    event: bytes = field(default=b"", repr=False)  # serialized ChaincodeEvent, valid txs only
    reason: str = ""  # why it is invalid, for logs: names and codes only, never values
    metadata: tuple[MetadataWrite, ...] = field(default=(), repr=False)  # valid txs only
    # the collections' hashed sets, valid txs only: handed to the private data store so that it
    # does not parse the envelope again
    hashed: tuple[HashedCollection, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class BlockResult:
    block_num: int
    txs: tuple[TxResult, ...]

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(t.code for t in self.txs)


@dataclass(frozen=True, slots=True)
class _Checked:
    """What a transaction that passed every check but MVCC brings to its result: its writes
    are read out of the protobuf rwset once, for the key-level policy checks, for the next
    transactions' policy changes and for the state."""

    ns_rwsets: tuple[tuple[str, kv_rwset_pb2.KVRWSet], ...]
    hashed: tuple[HashedCollection, ...]
    chaincode: str
    event: bytes
    writes: tuple[Write, ...]
    metadata: tuple[MetadataWrite, ...]


@dataclass(frozen=True, slots=True)
class _Pending:
    result: TxResult  # the verdict before MVCC; for a valid one, writes are added at the end
    checked: _Checked | None = None


class _Invalid(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = Code.Value(code)
        self.reason = reason


def validate_block(
    block: common_pb2.Block,
    *,
    config: ChannelPolicies,
    policy_for: PolicyLookup,
    state: StateReader,
    committed_txs: CommittedTxs,
    views: Sequence[EnvelopeView | MalformedTransaction] | None = None,
) -> BlockResult:
    """Validate every transaction of `block` against committed state; writes nothing.

    `committed_txs` answers which of the block's tx ids are already on the ledger (duplicate
    detection), asked once for the whole block. `views`: the block's envelopes as
    `parse_envelopes` gave them, when the caller has parsed them already.
    """
    number = int(block.header.number)
    parsed = parse_envelopes(block) if views is None else views
    on_ledger = committed_txs([v.header.tx_id for v in parsed if isinstance(v, EnvelopeView)])
    seen: set[str] = set()
    # Definitions are read from the state as of the block's start, so one look-up per block will do.
    definitions: dict[str, NamespacePolicy | None] = {}

    def cached_policy(namespace: str) -> NamespacePolicy | None:
        if namespace not in definitions:
            definitions[namespace] = policy_for(namespace)
        return definitions[namespace]

    keys = _KeyPolicies(state)
    pending: list[_Pending] = []
    for tx_num, view in enumerate(parsed):
        checked = _validate_envelope(view, tx_num, config, cached_policy, keys, on_ledger, seen)
        if checked.checked is not None:
            keys.note_changes(checked.checked.writes, checked.checked.metadata)
        pending.append(checked)
    mvcc_codes = check_block(
        state,
        [
            MvccTx(
                tx_num=i,
                ns_rwsets=p.checked.ns_rwsets if p.checked else (),
                valid_so_far=p.checked is not None,
            )
            for i, p in enumerate(pending)
        ],
    )
    results = []
    for p, mvcc_code in zip(pending, mvcc_codes, strict=True):
        result, c = p.result, p.checked
        if c is not None and mvcc_code not in (-1, VALID):
            result = TxResult(
                result.tx_num,
                result.tx_id,
                mvcc_code,
                result.timestamp_ms,
                c.chaincode,
                reason=Code.Name(mvcc_code),
            )
        elif c is not None:
            result = TxResult(
                result.tx_num,
                result.tx_id,
                VALID,
                result.timestamp_ms,
                c.chaincode,
                writes=c.writes,
                event=c.event,
                metadata=c.metadata,
                hashed=c.hashed,
            )
        results.append(result)
    return BlockResult(number, tuple(results))


def _validate_envelope(
    view: EnvelopeView | MalformedTransaction,
    tx_num: int,
    config: ChannelPolicies,
    policy_for: PolicyLookup,
    keys: _KeyPolicies,
    on_ledger: Set[str],
    seen: set[str],
) -> _Pending:
    if isinstance(view, MalformedTransaction):
        return _Pending(TxResult(tx_num, "", view.code, 0, reason=str(view)))
    tx_id, ts = view.header.tx_id, view.header.timestamp_ms
    try:
        checked = _check(view, config, policy_for, keys, on_ledger, seen)
    except _Invalid as exc:
        return _Pending(TxResult(tx_num, tx_id, exc.code, ts, reason=exc.reason))
    except MalformedTransaction as exc:
        return _Pending(TxResult(tx_num, tx_id, exc.code, ts, reason=str(exc)))
    seen.add(tx_id)
    return _Pending(TxResult(tx_num, tx_id, VALID, ts), checked)


def _check(
    view: EnvelopeView,
    config: ChannelPolicies,
    policy_for: PolicyLookup,
    keys: _KeyPolicies,
    on_ledger: Set[str],
    seen: set[str],
) -> _Checked:
    header = view.header
    at = stamped_at(header.timestamp_ms)
    signed = (view.signature, view.payload_bytes, config.msps)
    try:
        creator = check_signed_header(header, *signed, at=at, channel_id=config.channel_id)
    except HeaderRejected as exc:
        raise _Invalid(exc.code, str(exc)) from exc
    body = view.endorser_tx()
    if body.action_header_bytes != header.signature_header_bytes:
        raise _Invalid("INVALID_ENDORSER_TRANSACTION", "action header differs from the tx header")
    expected_hash = proposal_hash(
        header.channel_header_bytes, body.action_header_bytes, body.chaincode_proposal_payload
    )
    if body.proposal_hash != expected_hash:
        raise _Invalid("INVALID_ENDORSER_TRANSACTION", "proposal hash does not match the proposal")
    if header.tx_id in seen or header.tx_id in on_ledger:
        raise _Invalid("DUPLICATE_TXID", f"tx id {header.tx_id} is already on the ledger")
    if body.chaincode_name != header.chaincode_name or not body.chaincode_version:
        raise _Invalid("INVALID_CHAINCODE", "chaincode name or version does not match the header")
    if body.response_status >= 400:
        raise _Invalid("ENDORSEMENT_POLICY_FAILURE", "the endorsed response is an error")
    ns_rwsets = parse_rwset(body.rwset)
    names = [ns for ns, _ in ns_rwsets]
    if len(set(names)) != len(names):
        raise _Invalid("ILLEGAL_WRITESET", "a namespace appears twice in the read-write set")
    hashed = parse_hashed(body.rwset)
    if body.events:
        _check_event(body.events, body.chaincode_name)
    endorsements = [
        SignedData(
            data=body.proposal_response_payload + e.endorser,
            identity=e.endorser,
            signature=e.signature,
        )
        for e in body.endorsements
    ]
    # Read out of the rwsets once, for the key-level checks below, for the policy changes the
    # next transactions must see and for the state.
    writes, metadata = writes_of(ns_rwsets), metadata_writes_of(ns_rwsets)
    written = _written_keys(writes, metadata)
    hashed_rwsets = tuple((h.state_namespace, h.rwset) for h in hashed)
    private: dict[str, list[str]] = {}
    for h in hashed:
        if h.rwset.writes:
            private.setdefault(h.namespace, []).append(h.collection)
        elif h.rwset.reads:
            _defined_collection(policy_for, h.namespace, h.collection)
    for namespace in sorted(set(written) | set(private) | {body.chaincode_name}):
        needs_namespace_policy = _check_collections(
            namespace, private.get(namespace, ()), creator.msp_id, endorsements, config,
            policy_for, at,
        )  # fmt: skip
        _check_endorsement(
            namespace, written.get(namespace, ()), endorsements, config, policy_for, keys, at,
            private_needs_namespace_policy=needs_namespace_policy,
        )  # fmt: skip
    return _Checked(
        (*ns_rwsets, *hashed_rwsets),
        hashed,
        body.chaincode_name,
        body.events,
        writes + writes_of(hashed_rwsets),
        metadata + metadata_writes_of(hashed_rwsets),
    )


def _written_keys(
    writes: Sequence[Write], metadata: Sequence[MetadataWrite]
) -> dict[str, tuple[str, ...]]:
    """The keys each namespace writes, a value or metadata, sorted and distinct; a namespace
    that writes nothing is left out."""
    by_ns: dict[str, set[str]] = {}
    for ns, key in [(w.namespace, w.key) for w in writes] + [
        (m.namespace, m.key) for m in metadata
    ]:
        by_ns.setdefault(ns, set()).add(key)
    return {ns: tuple(sorted(keys)) for ns, keys in by_ns.items()}


class _KeyPolicies:
    """Committed key-level policies as of the block's start, and the keys whose policy an
    earlier transaction of the block changed."""

    def __init__(self, state: StateReader) -> None:
        self._state = state
        self._committed: dict[tuple[str, str], bytes | None] = {}
        self._changed: set[tuple[str, str]] = set()
        # Namespaces where no key has metadata as of the block's start (the state does not
        # change while a block validates): their keys need no look-up each.
        self._has_metadata: dict[str, bool] = {}

    def committed(self, namespace: str, key: str) -> bytes | None:
        """The key's committed validation parameter; None when it has none."""
        if (namespace, key) not in self._committed:
            if not self._namespace_has_metadata(namespace):
                return None
            entries = self._state.get_metadata(namespace, key)
            self._committed[(namespace, key)] = entries.get(VALIDATION_PARAMETER)
        return self._committed[(namespace, key)]

    def _namespace_has_metadata(self, namespace: str) -> bool:
        if namespace not in self._has_metadata:
            has_metadata = getattr(self._state, "has_metadata", None)
            self._has_metadata[namespace] = (
                True if has_metadata is None else bool(has_metadata(namespace))
            )
        return self._has_metadata[namespace]

    def changed(self, namespace: str, key: str) -> bool:
        return (namespace, key) in self._changed

    def note_changes(self, writes: Sequence[Write], metadata: Sequence[MetadataWrite]) -> None:
        """Record the policy changes of a transaction that passed the endorsement checks: its
        metadata writes, and its deletes of keys that had a policy."""
        self._changed.update((m.namespace, m.key) for m in metadata)
        self._changed.update(
            (w.namespace, w.key)
            for w in writes
            if w.value is None and self.committed(w.namespace, w.key) is not None
        )


def _check_endorsement(
    namespace: str,
    keys: Sequence[str],
    endorsements: Sequence[SignedData],
    config: ChannelPolicies,
    policy_for: PolicyLookup,
    key_policies: _KeyPolicies,
    at: dt.datetime,
    *,
    private_needs_namespace_policy: bool | None = None,
) -> None:
    """Key-level policies of the written keys, then the namespace's policy when it applies.

    `private_needs_namespace_policy`: None when the namespace writes no private data, else
    whether one of its collections written has no endorsement policy of its own."""
    if namespace == LIFECYCLE_NAMESPACE:
        # Lifecycle changes keep the channel's majority rule; no key-level policies there.
        if not config.evaluate_policy(LIFECYCLE_POLICY, endorsements, at=at):
            raise _Invalid(
                "ENDORSEMENT_POLICY_FAILURE",
                f"endorsements do not satisfy the endorsement policy of {namespace}",
            )
        return
    definition = policy_for(namespace)
    if definition is None or not definition.active:
        state = "deregistered" if definition else "not committed"
        raise _Invalid("INVALID_CHAINCODE", f"contract {namespace} is {state}")
    # an invoked namespace that writes nothing needs the contract's policy (FAB-9473)
    needs_namespace_policy = (
        not keys if private_needs_namespace_policy is None else private_needs_namespace_policy
    )
    judged: set[bytes] = set()
    for index, key in enumerate(keys):
        if key_policies.changed(namespace, key):
            raise _Invalid(
                "ENDORSEMENT_POLICY_FAILURE",
                f"written key {index + 1} of {namespace} had its endorsement policy changed by "
                "an earlier transaction of this block; endorse the transaction again",
            )
        parameter = key_policies.committed(namespace, key)
        if parameter is None:
            needs_namespace_policy = True
        elif parameter not in judged:
            if not _key_policy_satisfied(parameter, endorsements, config, at):
                raise _Invalid(
                    "ENDORSEMENT_POLICY_FAILURE",
                    f"endorsements do not satisfy the key-level endorsement policy of written "
                    f"key {index + 1} of {namespace}",
                )
            judged.add(parameter)
    if needs_namespace_policy and not _namespace_policy_satisfied(
        namespace, definition, endorsements, config, at
    ):
        raise _Invalid(
            "ENDORSEMENT_POLICY_FAILURE",
            f"endorsements do not satisfy the endorsement policy of {namespace}",
        )


def _defined_collection(
    policy_for: PolicyLookup, namespace: str, collection: str
) -> CollectionPolicy:
    definition = policy_for(namespace)
    found = definition.collections.get(collection) if definition else None
    if found is None:
        raise _Invalid(
            "ENDORSEMENT_POLICY_FAILURE",
            f"collection {collection} is not defined for contract {namespace}",
        )
    return found


def _check_collections(
    namespace: str,
    collections: Sequence[str],
    creator_msp: str,
    endorsements: Sequence[SignedData],
    config: ChannelPolicies,
    policy_for: PolicyLookup,
    at: dt.datetime,
) -> bool | None:
    """Fabric's rules for private writes: each collection is defined, `memberOnlyWrite` admits
    only clients of member organisations, and a collection's own endorsement policy is met.
    Whether the contract's policy is needed for them (None: no private writes)."""
    if not collections:
        return None
    needs_namespace_policy = False
    for name in collections:
        collection = _defined_collection(policy_for, namespace, name)
        if collection.member_only_write and creator_msp not in collection.members:
            raise _Invalid(
                "ENDORSEMENT_POLICY_FAILURE",
                f"{creator_msp} is not a member of collection {name}, which is member-only-write",
            )
        if collection.endorsement_policy is None:
            needs_namespace_policy = True
        elif not _application_policy_satisfied(
            collection.endorsement_policy, endorsements, config, at
        ):
            raise _Invalid(
                "ENDORSEMENT_POLICY_FAILURE",
                f"endorsements do not satisfy the endorsement policy of collection {name} of "
                f"{namespace}",
            )
    return needs_namespace_policy


def _key_policy_satisfied(
    parameter: bytes, endorsements: Sequence[SignedData], config: ChannelPolicies, at: dt.datetime
) -> bool:
    envelope = policies_pb2.SignaturePolicyEnvelope()
    try:
        envelope.ParseFromString(parameter)
    except DecodeError:
        return False  # a policy that does not decode is never satisfied (Fabric: an error)
    return evaluate_signature_policy(envelope, endorsements, config.msps, at=at)


def _namespace_policy_satisfied(
    namespace: str,
    definition: NamespacePolicy,
    endorsements: Sequence[SignedData],
    config: ChannelPolicies,
    at: dt.datetime,
) -> bool:
    try:
        return _application_policy_satisfied(
            definition.application_policy, endorsements, config, at
        )
    except DecodeError as exc:
        raise _Invalid("INVALID_CHAINCODE", f"policy of {namespace} is malformed") from exc


def _application_policy_satisfied(
    data: bytes, endorsements: Sequence[SignedData], config: ChannelPolicies, at: dt.datetime
) -> bool:
    """A serialized peer.ApplicationPolicy: a signature policy or a channel policy reference."""
    policy, compiled = _parsed_application_policy(bytes(data))
    if policy.HasField("signature_policy"):
        return compiled is not None and compiled_policy_satisfied(
            compiled, endorsements, config.msps, at=at
        )
    return config.evaluate_policy(policy.channel_config_policy_reference, endorsements, at=at)


@functools.lru_cache(maxsize=256)
def _parsed_application_policy(
    data: bytes,
) -> tuple[policy_pb2.ApplicationPolicy, CompiledPolicy | None]:
    """Parsed, with its signature policy compiled (None: it does not compile), once per
    distinct policy (each transaction of a contract has the same); keyed by the bytes, so a
    changed definition is parsed afresh. Callers only read the message."""
    policy = policy_pb2.ApplicationPolicy()
    policy.ParseFromString(data)
    return policy, compile_policy(policy.signature_policy)


def _check_event(data: bytes, chaincode: str) -> None:
    try:
        event = parse_chaincode_event(data)
    except DecodeError as exc:
        raise _Invalid("INVALID_OTHER_REASON", "the chaincode event does not decode") from exc
    if event.chaincode_id != chaincode:
        raise _Invalid("INVALID_OTHER_REASON", "the event names another contract")
