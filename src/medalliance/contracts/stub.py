"""The simulator a contract sees: Fabric's stub semantics, recorded into a read-write set.

Reads see committed state only — Fabric does not let a transaction read its own writes — and
record the version read (or its absence); writes are buffered (last write per key wins); range
reads record what they returned for phantom checks at commit (Fabric's `RangeQueryInfo`: while
the iterator is not exhausted its `end_key` is the last key returned; reading to the end sets
`itr_exhausted` and keeps the requested end). A simple range with an empty start key starts at
U+0001, as Fabric's shim does, so composite keys (which start with U+0000) stay out of it. Rich
queries and history are not re-checked at commit (as in Fabric), so contracts must not base
writes on them alone. The read-write set is deterministic: keys sorted, range queries in
execution order (of their first read).

Keys must be non-empty valid UTF-8; a key that starts with U+0000 must be a well-formed composite
key. Values must be non-empty (use `del_state`). Violations raise `ContractError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from fabric_protos.common import policies_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.peer import chaincode_event_pb2
from google.protobuf.message import DecodeError

from medalliance.contracts.composite_key import MAX_RUNE, SEPARATOR, partial_key_range
from medalliance.contracts.private_stub import (
    NO_PRIVATE_DATA,
    Collections,
    PrivateCalls,
    PrivateReader,
    no_collections,
)
from medalliance.errors import ContractError, InvalidArgument
from medalliance.ledger.state import VALIDATION_PARAMETER, KeyModification, StateReader, Version

# Fabric's shim substitutes U+0001 for an empty start key of a simple range (`emptyKeySubstitute`),
# so the range, and its re-run by the committer's phantom check, excludes composite keys.
_EMPTY_KEY_SUBSTITUTE = "\x01"


# (calling namespace, called contract, [function, *args]) -> the callee's payload
Invoke = Callable[[str, str, list[bytes]], bytes]


def _no_calls(caller: str, name: str, args: list[bytes]) -> bytes:
    raise ContractError("this simulation cannot call other contracts", 400)


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    payload: bytes


class Stub(PrivateCalls):
    """One simulation of one contract call over committed state (private data: `PrivateCalls`)."""

    def __init__(
        self,
        reader: StateReader,
        namespace: str,
        *,
        tx_id: str,
        channel_id: str,
        timestamp_ms: int,
        transient: Mapping[str, bytes],
        invoke: Invoke = _no_calls,
        private: PrivateReader = NO_PRIVATE_DATA,
        collections: Collections = no_collections,
        creator_msp: str = "",
    ) -> None:
        self._reader = reader
        self.namespace = namespace
        self.tx_id = tx_id
        self.channel_id = channel_id
        self.tx_timestamp_ms = timestamp_ms
        self._transient = transient
        self._invoke = invoke
        self._calls: list[tuple[str, bool]] = []  # (function, read-only) of the running calls
        self._reads: dict[str, Version | None] = {}
        self._writes: dict[str, bytes | None] = {}
        self._metadata: dict[str, dict[str, bytes]] = {}  # key -> its whole new metadata
        self._ranges: list[kv_rwset_pb2.RangeQueryInfo] = []
        self.event: Event | None = None
        self._init_private(private, collections, creator_msp)

    # --- reads -----------------------------------------------------------------------------------

    def get_state(self, key: str) -> bytes | None:
        _check_key(key, composite_ok=True)
        versioned = self._reader.get(self.namespace, key)
        if key not in self._reads:
            self._reads[key] = versioned.version if versioned else None
        return versioned.value if versioned else None

    def get_state_by_range(self, start_key: str, end_key: str) -> Iterator[tuple[str, bytes]]:
        for key in (start_key, end_key):
            if key:
                _check_key(key, composite_ok=False)
        return self._range(start_key or _EMPTY_KEY_SUBSTITUTE, end_key)

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str] = ()
    ) -> Iterator[tuple[str, bytes]]:
        return self._range(*partial_key_range(object_type, attributes))

    def _range(self, start_key: str, end_key: str) -> Iterator[tuple[str, bytes]]:
        info = kv_rwset_pb2.RangeQueryInfo(start_key=start_key, end_key=end_key)
        info.raw_reads.SetInParent()
        self._ranges.append(info)
        for key, versioned in self._reader.range(self.namespace, start_key, end_key):
            # Until exhausted, the range read so far ends at the last key returned (inclusive).
            info.end_key = key
            info.raw_reads.kv_reads.add(
                key=key,
                version=kv_rwset_pb2.Version(
                    block_num=versioned.version.block_num, tx_num=versioned.version.tx_num
                ),
            )
            yield key, versioned.value
        info.itr_exhausted = True
        info.end_key = end_key

    def get_query_result(self, query: Mapping[str, object] | str) -> list[tuple[str, bytes]]:
        try:
            parsed = json.loads(query) if isinstance(query, str) else query
            page = self._reader.query(self.namespace, parsed)
        except InvalidArgument as exc:
            raise ContractError(str(exc), 400) from exc
        return [(key, v.value) for key, v in page.results]

    def get_history_for_key(self, key: str) -> Sequence[KeyModification]:
        _check_key(key, composite_ok=True)
        return self._reader.history(self.namespace, key)

    def get_state_validation_parameter(self, key: str) -> bytes | None:
        """The key's committed endorsement policy (a serialized SignaturePolicyEnvelope), or
        None when the contract-level policy applies (Fabric's GetStateValidationParameter)."""
        _check_key(key, composite_ok=True)
        if key not in self._reads:  # the decision rests on the key's version: MVCC re-checks it
            versioned = self._reader.get(self.namespace, key)
            self._reads[key] = versioned.version if versioned else None
        return self._reader.get_metadata(self.namespace, key).get(VALIDATION_PARAMETER)

    def get_transient(self) -> Mapping[str, bytes]:
        return self._transient

    # --- other contracts -------------------------------------------------------------------------

    def invoke_chaincode(self, name: str, args: Sequence[str | bytes]) -> bytes:
        """Call `args[0]` of contract `name` on this channel within this transaction; its
        payload, or the callee's `ContractError` (status and message) if it refuses."""
        encoded = [a.encode() if isinstance(a, str) else bytes(a) for a in args]
        return self._invoke(self.namespace, name, encoded)

    def begin_call(self, function: str, *, read_only: bool) -> None:
        self._calls.append((function, read_only))

    def end_call(self) -> None:
        self._calls.pop()

    # --- writes ----------------------------------------------------------------------------------

    def put_state(self, key: str, value: bytes) -> None:
        self._check_writable()
        _check_key(key, composite_ok=True)
        if not value:
            raise ContractError("value is empty; use del_state to delete a key", 400)
        self._writes[key] = bytes(value)

    def del_state(self, key: str) -> None:
        self._check_writable()
        _check_key(key, composite_ok=True)
        self._writes[key] = None

    def set_state_validation_parameter(self, key: str, policy: bytes) -> None:
        """Give `key` its own endorsement policy, in force from the next transaction on
        (Fabric's SetStateValidationParameter); empty `policy` returns it to the contract's.

        `policy` is a serialized SignaturePolicyEnvelope (`contracts.key_policy`). The key must
        exist or be written by this transaction: metadata of a missing key is not kept.
        """
        self._check_writable()
        _check_key(key, composite_ok=True)
        if policy:
            _check_policy(policy)
        if self._writes.get(key, b"") is None or (
            key not in self._writes and self._reader.get(self.namespace, key) is None
        ):
            raise ContractError("set the value of a key before its endorsement policy", 400)
        entries = self._metadata.get(key)
        if entries is None:
            entries = dict(self._reader.get_metadata(self.namespace, key))
        if policy:
            entries[VALIDATION_PARAMETER] = bytes(policy)
        else:
            entries.pop(VALIDATION_PARAMETER, None)
        self._metadata[key] = entries

    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise ContractError("an event needs a name")
        self.event = Event(name, bytes(payload))

    def _check_writable(self) -> None:
        if self._calls and self._calls[-1][1]:
            raise ContractError(f"{self._calls[-1][0]} is evaluate-only and cannot write", 400)

    # --- results ---------------------------------------------------------------------------------

    def rwset(self) -> rwset_pb2.TxReadWriteSet:
        """This namespace's reads and writes as a whole read-write set."""
        return rwset_pb2.TxReadWriteSet(
            data_model=rwset_pb2.TxReadWriteSet.DataModel.Value("KV"), ns_rwset=[self.ns_rwset()]
        )

    def ns_rwset(self) -> rwset_pb2.NsReadWriteSet:
        kv = kv_rwset_pb2.KVRWSet()
        for key in sorted(self._reads):
            read = kv.reads.add(key=key)
            version = self._reads[key]
            if version is not None:
                read.version.block_num = version.block_num
                read.version.tx_num = version.tx_num
        kv.range_queries_info.extend(self._ranges)
        for key in sorted(self._writes):
            value = self._writes[key]
            kv.writes.add(key=key, is_delete=value is None, value=value or b"")
        for key in sorted(self._metadata):
            write = kv.metadata_writes.add(key=key)
            for name in sorted(self._metadata[key]):
                write.entries.add(name=name, value=self._metadata[key][name])
        return rwset_pb2.NsReadWriteSet(
            namespace=self.namespace,
            rwset=kv.SerializeToString(),
            collection_hashed_rwset=self.collection_hashed_rwsets(),
        )

    def event_bytes(self) -> bytes | None:
        if self.event is None:
            return None
        return bytes(
            chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=self.namespace,
                tx_id=self.tx_id,
                event_name=self.event.name,
                payload=self.event.payload,
            ).SerializeToString()
        )


def _check_policy(policy: bytes) -> None:
    envelope = policies_pb2.SignaturePolicyEnvelope()
    try:
        envelope.ParseFromString(policy)
    except DecodeError:
        raise ContractError(
            "an endorsement policy must be a SignaturePolicyEnvelope", 400
        ) from None
    if envelope.version != 0 or not envelope.HasField("rule") or not envelope.identities:
        raise ContractError("an endorsement policy needs version 0, a rule and principals", 400)


def _check_key(key: str, *, composite_ok: bool) -> None:
    if not key:
        raise ContractError("a key must not be empty")
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise ContractError("a key must be valid UTF-8", 400) from None
    if MAX_RUNE in key or (key.startswith(SEPARATOR) and not composite_ok):
        raise ContractError("a simple key must not start with U+0000 or contain U+10FFFF")
    if key.startswith(SEPARATOR) and not (
        len(key) > 2 and key.endswith(SEPARATOR) and key[1] != SEPARATOR
    ):
        raise ContractError("a key starting with U+0000 must be a composite key", 400)
