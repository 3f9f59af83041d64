"""A dict-backed `StateReader` and transaction contexts for contract unit tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tests.conftest import NOW, Org

from medalliance.contracts.simulation import SimulationResult, TxContext
from medalliance.identity.msp import MspManager
from medalliance.ledger.state import KeyModification, QueryPage, Version, VersionedValue


class DictState:
    """Committed state in a dict; `commit` applies a simulation's writes like a valid tx would."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], VersionedValue] = {}
        self.block = 0

    def put(self, namespace: str, key: str, value: bytes, version: Version | None = None) -> None:
        self.block += 1
        self.data[(namespace, key)] = VersionedValue(value, version or Version(self.block, 0))

    def commit(self, result: SimulationResult) -> None:
        """Apply the writes of a successful simulation as the only tx of a new block."""
        from fabric_protos.ledger.rwset import rwset_pb2
        from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2

        assert result.status == 200, result.message
        self.block += 1
        txrw = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
        for ns in txrw.ns_rwset:
            for write in kv_rwset_pb2.KVRWSet.FromString(ns.rwset).writes:
                if write.is_delete:
                    self.data.pop((ns.namespace, write.key), None)
                else:
                    self.data[(ns.namespace, write.key)] = VersionedValue(
                        bytes(write.value), Version(self.block, 0)
                    )

    def get(self, namespace: str, key: str) -> VersionedValue | None:
        return self.data.get((namespace, key))

    def range(
        self, namespace: str, start_key: str, end_key: str
    ) -> Iterator[tuple[str, VersionedValue]]:
        keys = sorted(
            (k for ns, k in self.data if ns == namespace),
            key=lambda k: k.encode("utf-8"),
        )
        for key in keys:
            encoded = key.encode("utf-8")
            if start_key and encoded < start_key.encode("utf-8"):
                continue
            if end_key and encoded >= end_key.encode("utf-8"):
                continue
            yield key, self.data[(namespace, key)]

    def query(
        self, namespace: str, query: Mapping[str, Any], page_size: int = 0, bookmark: str = ""
    ) -> QueryPage:
        import json

        selector = query.get("selector", {})
        results = []
        for key, versioned in self.range(namespace, "", ""):
            try:
                doc = json.loads(versioned.value)
            except ValueError:
                continue
            if isinstance(doc, dict) and all(
                doc.get(field) == value for field, value in selector.items()
            ):
                results.append((key, versioned))
        return QueryPage(tuple(results), "")

    def history(self, namespace: str, key: str) -> Sequence[KeyModification]:
        return ()

    def get_metadata(self, namespace: str, key: str) -> Mapping[str, bytes]:
        return {}


def tx_context(
    org: Org,
    msps: MspManager,
    *,
    admin: bool = False,
    tx_id: str = "tx1",
    timestamp_ms: int = 1_764_331_200_123,
    channel_orgs: tuple[str, ...] = ("Org1MSP", "Org2MSP"),
    role: str | None = None,
) -> TxContext:
    signer = org.signer("Admin" if admin else "User1", ou="admin" if admin else "client", role=role)
    creator = msps.deserialize(signer.serialized_identity, at=NOW)
    return TxContext("alliance", tx_id, timestamp_ms, creator, channel_orgs=channel_orgs)
