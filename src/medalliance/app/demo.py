"""The demo alliance: the paper's referral workflow on an embedded network or on processes.

`run_demo` creates (or reopens) the paper's alliance in a folder — a city and a district health
commission, two tertiary and two secondary hospitals, every alliance contract committed through
the lifecycle — runs the referral workflow (`referral_demo`) and summarises the channel's blocks,
leaving a ledger that `medalliance ledger verify` accepts. `run_demo_on` runs the same workflow
against a running network of processes. No real patient is ever used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fabric_protos.peer import transaction_pb2

import medalliance
from medalliance.app.alliance_network import EmbeddedAlliance, GatewayAlliance
from medalliance.app.referral_demo import Step, run_referral
from medalliance.errors import NotFound
from medalliance.ledger.block import header_hash, transactions_filter
from medalliance.ledger.block_signature import block_time
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork

CHANNEL = "alliance"


@dataclass(frozen=True, slots=True)
class BlockSummary:
    number: int
    txs: int
    valid: int
    codes: tuple[str, ...]
    header_hash: str
    time: str


@dataclass(frozen=True, slots=True)
class DemoResult:
    data_dir: Path
    steps: tuple[Step, ...]
    blocks: tuple[BlockSummary, ...] = field(default=())


def default_config_path() -> Path:
    """`networks/demo-alliance.yaml` of the source tree, else of the working directory."""
    beside_source = Path(medalliance.__file__).resolve().parents[2] / "networks"
    for base in (beside_source, Path.cwd() / "networks"):
        if (base / "demo-alliance.yaml").exists():
            return base / "demo-alliance.yaml"
    raise NotFound("networks/demo-alliance.yaml not found; pass --config PATH")


def run_demo(
    config_path: Path,
    data_dir: Path,
    on_step: Callable[[Step], None] = lambda step: None,
    on_progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """The referral workflow on an embedded network in `data_dir` (created the first time)."""
    config = load_network_config(config_path)
    with EmbeddedNetwork.open(config, data_dir, on_progress=on_progress) as network:
        alliance = EmbeddedAlliance(network, CHANNEL)
        try:
            contracts = ", ".join(c.name for c in config.channel(CHANNEL).contracts)
            on_step(
                Step(
                    "alliance up",
                    f"{len(network.peers)} peers of {len(config.organizations)} organisations on "
                    f"channel {CHANNEL}; contracts {contracts} committed through the lifecycle",
                )
            )
            steps = run_referral(alliance, on_step)
        finally:
            alliance.close()
        return DemoResult(data_dir, tuple(steps), _summaries(network))


def run_demo_on(
    network_dir: Path, on_step: Callable[[Step], None] = lambda step: None
) -> DemoResult:
    """The referral workflow against the running network of `network_dir` (`network up`)."""
    alliance = GatewayAlliance(network_dir, CHANNEL)
    try:
        return DemoResult(network_dir, tuple(run_referral(alliance, on_step)))
    finally:
        alliance.close()


def _summaries(network: EmbeddedNetwork) -> tuple[BlockSummary, ...]:
    ledger = network.peers_of(CHANNEL)[0].channel(CHANNEL)
    out = []
    for block in ledger.blocks():
        codes = tuple(_code(c) for c in transactions_filter(block))
        number = int(block.header.number)
        out.append(
            BlockSummary(
                number=number,
                txs=len(block.data.data),
                valid=codes.count("VALID"),
                codes=codes,
                header_hash=header_hash(block.header).hex(),
                time="genesis" if number == 0 else block_time(block).isoformat(timespec="seconds"),
            )
        )
    return tuple(out)


def _code(code: int) -> str:
    return str(transaction_pb2.TxValidationCode.Name(code))
