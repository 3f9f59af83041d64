"""A node's Prometheus metrics, served at `/metrics` on its operations endpoint.

Each node object owns one `CollectorRegistry` (never the library's global default registry:
several nodes of an embedded network or a test share one process). Names follow Fabric's
metrics reference where Fabric has the metric (`ledger_blockchain_height`,
`ledger_transaction_count`, `endorser_proposal_duration`, `broadcast_processed_count`,
`blockcutter_block_fill_duration`, `consensus_smartbft_*`), and are ours, with units, where it
has none (`medalliance_*_seconds`, `*_total`). docs/audit.md, "Metrics", lists them all.

Cost on the hot paths: counters are plain dict increments on the event-loop thread, turned into
samples only when scraped; gauges that mirror node state (heights, mempool size, consensus
round) are read at scrape time; one histogram observation per block or proposal.

Fabric's counters keep Fabric's exact names: prometheus-client would append `_total` to a
typed counter, so they are exposed untyped (Prometheus' `rate()` works on them as on counters).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from fabric_protos.peer import transaction_pb2
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric, UnknownMetricFamily

from medalliance.ledger.validation import BlockResult

# Fabric's default buckets are Prometheus' defaults; commits of large blocks take longer.
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_CODE_NAMES = dict(transaction_pb2.TxValidationCode.items())
_CODE_OF = {number: name for name, number in _CODE_NAMES.items()}


class _Counts:
    """A labelled counter kept as a dict: incremented on the loop, read by the scrape thread.

    `list(dict.items())` copies under the GIL, so a scrape never sees a dict being resized."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        self.values[key] = self.values.get(key, 0.0) + amount

    def family(self) -> Metric:
        family = UnknownMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, value in list(self.values.items()):
            family.add_metric(list(key), value)
        return family


class _Collector:
    """Yields the dict counters and the gauges read from the node at scrape time."""

    def __init__(self, counts: Sequence[_Counts], gauges: Callable[[], Iterator[Metric]]) -> None:
        self._counts = counts
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        for counts in self._counts:
            yield counts.family()
        yield from self._gauges()


def channel_gauge(name: str, documentation: str, values: Mapping[str, float]) -> Metric:
    """A gauge with one sample per channel."""
    family = GaugeMetricFamily(name, documentation, labels=["channel"])
    for channel_id, value in sorted(values.items()):
        family.add_metric([channel_id], value)
    return family


class NodeMetrics:
    """What every node exposes: the registry, and the audit index's lag for the audit index (app/audit_index.py)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._lag = Gauge(
            "medalliance_audit_index_lag_blocks",
            "Blocks committed on the channel that the audit index has not indexed yet.",
            ["channel"],
            registry=self.registry,
        )

    def set_audit_index_lag(self, channel_id: str, blocks: int) -> None:
        """The audit index reports how far it is behind the ledger (a `Callable[[str, int],
        None]` it can take without importing node/): call it after each indexed block."""
        self._lag.labels(channel=channel_id).set(blocks)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format (the body of `GET /metrics`)."""
        return generate_latest(self.registry)


class PeerMetrics(NodeMetrics):
    """A peer's ledger and endorser metrics. `heights` is read at scrape time."""

    def __init__(self, heights: Callable[[], Mapping[str, int]]) -> None:
        super().__init__()
        self._heights = heights
        self.transactions = _Counts(
            "ledger_transaction_count",
            "Number of transactions processed.",
            ["channel", "transaction_type", "chaincode", "validation_code"],
        )
        self.proposals_received = _Counts(
            "endorser_proposals_received", "The number of proposals received.", []
        )
        self.successful_proposals = _Counts(
            "endorser_successful_proposals", "The number of successful proposals.", []
        )
        self.registry.register(
            _Collector(
                [self.transactions, self.proposals_received, self.successful_proposals],
                self._gauges,
            )
        )
        self._block_time = Histogram(
            "ledger_block_processing_time",
            "Time taken in seconds for ledger block processing.",
            ["channel"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self._proposal_time = Histogram(
            "endorser_proposal_duration",
            "The time to complete a proposal.",
            ["channel", "chaincode", "success"],
            buckets=_SECONDS,
            registry=self.registry,
        )
        self._divergent = Gauge(
            "medalliance_integrity_divergent_peers",
            "Peers the integrity monitor names as diverging, per channel (monitor nodes only).",
            ["channel"],
            registry=self.registry,
        )

    def committed(
        self, channel_id: str, result: BlockResult, *, config: bool, seconds: float
    ) -> None:
        """A block was validated and committed in `seconds`."""
        self._block_time.labels(channel_id).observe(seconds)
        kind = "CONFIG" if config else "ENDORSER_TRANSACTION"
        inc = self.transactions.inc
        for tx in result.txs:
            inc((channel_id, kind, tx.chaincode, _CODE_OF.get(tx.code, str(tx.code))))

    def proposal(self, channel_id: str, chaincode: str, *, success: bool, seconds: float) -> None:
        """A proposal was received and answered (endorsed, or refused when not `success`)."""
        self.proposals_received.inc(())
        if success:
            self.successful_proposals.inc(())
        self._proposal_time.labels(channel_id, chaincode, str(success).lower()).observe(seconds)

    def divergent_peers(self, counts: Mapping[str, int]) -> None:
        """The integrity monitor's latest count of divergent peers per channel."""
        for channel_id, count in counts.items():
            self._divergent.labels(channel=channel_id).set(count)

    def _gauges(self) -> Iterator[Metric]:
        yield channel_gauge(
            "ledger_blockchain_height", "Height of the chain in blocks.", self._heights()
        )


class OrdererMetrics(NodeMetrics):
    """An ordering node's broadcast, block-cutting and consensus metrics.

    `consensus` is read at scrape time: per channel, the `BftChannel.status()` mapping."""

    def __init__(self, consensus: Callable[[], Mapping[str, Mapping[str, object]]]) -> None:
        super().__init__()
        self._consensus = consensus
        self.broadcasts = _Counts(
            "broadcast_processed_count",
            "The number of transactions processed.",
            ["channel", "type", "status"],
        )
        self.registry.register(_Collector([self.broadcasts], self._gauges))
        self._fill = Histogram(
            "blockcutter_block_fill_duration",
            "The time from first transaction enqueuing to the block being cut in seconds.",
            ["channel"],
            buckets=_SECONDS,
            registry=self.registry,
        )

    def broadcast(self, channel_id: str, header_type: str, status: str) -> None:
        self.broadcasts.inc((channel_id, header_type, status))

    def block_cut(self, channel_id: str, fill_seconds: float) -> None:
        self._fill.labels(channel_id).observe(fill_seconds)

    def _gauges(self) -> Iterator[Metric]:
        status = self._consensus()

        def each(key: str) -> dict[str, float]:
            return {cid: _number(s.get(key)) for cid, s in status.items()}

        yield channel_gauge(
            "ledger_blockchain_height", "Height of the chain in blocks.", each("storeHeight")
        )
        yield channel_gauge(
            "consensus_smartbft_view_proposal_sequence",
            "The height the consensus is deciding (the next block's number).",
            each("height"),
        )
        yield channel_gauge(
            "consensus_smartbft_view_number",
            "The consensus round at the current height (0 until a round change).",
            each("round"),
        )
        yield channel_gauge(
            "consensus_smartbft_pool_count_of_elements",
            "Transactions waiting in the mempool.",
            each("mempool"),
        )
        for name, key, documentation in (
            ("medalliance_consensus_proposals_total", "proposals", "Blocks this node proposed."),
            ("medalliance_consensus_decided_blocks_total", "decided", "Blocks decided."),
            (
                "medalliance_consensus_round_changes_total",
                "roundChanges",
                "Rounds that ended without a decision (view changes), summed over heights.",
            ),
        ):
            family = Metric(name.removesuffix("_total"), documentation, "counter")
            for channel_id, value in sorted(each(key).items()):
                family.add_sample(name, {"channel": channel_id}, value)
            yield family


def _number(value: object) -> float:
    """A status field as a sample value: numbers as they are, anything else (None) as 0."""
    return float(value) if isinstance(value, int | float) else 0.0
