"""Metrics of one node never show in another's registry; Fabric's names come out unchanged."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from medalliance.ledger.validation import VALID, BlockResult, TxResult
from medalliance.node.metrics import PeerMetrics

MVCC = 11  # MVCC_READ_CONFLICT


def samples(metrics: PeerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_two_nodes_in_one_process_keep_their_own_registries() -> None:
    first, second = PeerMetrics(lambda: {"ch": 3}), PeerMetrics(lambda: {"ch": 7})
    first.set_audit_index_lag("ch", 5)
    assert samples(first)[("medalliance_audit_index_lag_blocks", (("channel", "ch"),))] == 5
    assert not any(name == "medalliance_audit_index_lag_blocks" for name, _ in samples(second))
    assert samples(second)[("ledger_blockchain_height", (("channel", "ch"),))] == 7


def test_transactions_are_counted_by_fabric_labels() -> None:
    metrics = PeerMetrics(dict)
    txs = (TxResult(0, "a", VALID, 0, "basic"), TxResult(1, "b", MVCC, 0, "basic"))
    metrics.committed("ch", BlockResult(4, txs), config=False, seconds=0.01)
    metrics.committed("ch", BlockResult(5, txs[:1]), config=False, seconds=0.01)
    found = samples(metrics)

    def count(code: str) -> float:
        labels = (
            ("chaincode", "basic"),
            ("channel", "ch"),
            ("transaction_type", "ENDORSER_TRANSACTION"),
            ("validation_code", code),
        )
        return found[("ledger_transaction_count", labels)]

    assert (count("VALID"), count("MVCC_READ_CONFLICT")) == (2, 1)
    assert found[("ledger_block_processing_time_count", (("channel", "ch"),))] == 2
    text = metrics.exposition().decode()
    assert "# TYPE ledger_transaction_count untyped" in text  # Fabric's name, no _total
