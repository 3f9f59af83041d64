"""The demo alliance: what the platform does, step by step, on an embedded network.

`run_smoke` creates (or reopens) the paper's alliance — a city and a district health commission,
two tertiary and two secondary hospitals — deploys the `visit` contract through the lifecycle,
registers and refers a visit, shows a refused call and an MVCC conflict, and leaves a ledger that
`medalliance ledger verify` accepts. Steps are reported through a callback so the CLI can render
them; no patient identity is ever used: patients appear only as pseudonyms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fabric_protos.peer import transaction_pb2

import medalliance
from medalliance.errors import ContractError, NotFound
from medalliance.ledger.block import header_hash, transactions_filter
from medalliance.ledger.block_signature import block_time
from medalliance.node.config import NetworkConfig, load_network_config
from medalliance.node.embedded import EmbeddedNetwork

CHANNEL = "alliance"
CONTRACT = "visit"


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the demo did, and what came of it."""

    title: str
    outcome: str
    ok: bool = True


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


def run_smoke(
    config_path: Path,
    data_dir: Path,
    on_step: Callable[[Step], None] = lambda step: None,
    on_progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the smoke scenario; returns every step and a summary of the channel's blocks."""
    config = load_network_config(config_path)
    steps: list[Step] = []

    def report(title: str, outcome: str, ok: bool = True) -> None:
        step = Step(title, outcome, ok)
        steps.append(step)
        on_step(step)

    with EmbeddedNetwork.open(config, data_dir, on_progress=on_progress) as network:
        secondary, tertiary, other = _roles(config)
        report(
            "alliance up",
            f"{len(network.peers)} peers of {len(config.organizations)} organisations on channel "
            f"{CHANNEL}; contract {CONTRACT} committed through the lifecycle",
        )
        doctor = network.client(secondary, "User1")
        run = network.peers_of(CHANNEL)[0].channel(CHANNEL).height
        visit_no = f"V-{run:04d}"
        # A pseudonym stands for the patient: the identity stays in the hospital's own database.
        patient_ref = hashlib.sha256(f"demo-patient-{run}".encode()).hexdigest()[:32]
        result = doctor.submit(CHANNEL, CONTRACT, "RegisterVisit", visit_no, patient_ref, secondary)
        report(
            f"{secondary} registers visit {visit_no}",
            f"{_code(result.code)} in block {result.block_number}",
            result.valid,
        )
        record = json.loads(
            network.client(tertiary).evaluate(CHANNEL, CONTRACT, "GetVisit", visit_no)
        )
        report(
            f"{tertiary} reads visit {visit_no}",
            f"patient {record['patientRef'][:8]}… at {record['hospital']}",
        )
        try:
            network.client(other).submit(
                CHANNEL, CONTRACT, "RegisterVisit", visit_no + "-X", patient_ref, secondary
            )
            report(f"{other} registers a visit at {secondary}", "accepted (unexpected)", ok=False)
        except ContractError as exc:
            report(f"{other} registers a visit at {secondary}", f"refused: {exc}")
        result = doctor.submit(CHANNEL, CONTRACT, "TransferVisit", visit_no, tertiary)
        report(
            f"{secondary} refers visit {visit_no} to {tertiary}",
            f"{_code(result.code)} in block {result.block_number}",
            result.valid,
        )
        holder = network.client(tertiary)
        first, _ = holder.submit_async(CHANNEL, CONTRACT, "TransferVisit", visit_no, secondary)
        second, _ = holder.submit_async(CHANNEL, CONTRACT, "TransferVisit", visit_no, other)
        network.cut_blocks(CHANNEL)
        codes = [_code(holder.status(CHANNEL, tx).code) for tx in (first, second)]
        report(
            "two concurrent referrals of the same visit",
            f"first {codes[0]}, second {codes[1]}: exactly one moves the patient",
            codes.count("VALID") == 1,
        )
        blocks = _summaries(network)
    return DemoResult(data_dir, tuple(steps), blocks)


def _roles(config: NetworkConfig) -> tuple[str, str, str]:
    """(a secondary hospital, a tertiary hospital, another hospital) of the demo config."""
    by_type: dict[str, list[str]] = {}
    for org in config.organizations:
        by_type.setdefault(org.type, []).append(org.msp_id)
    secondary = by_type.get("secondary", [])
    tertiary = by_type.get("tertiary", [])
    if len(secondary) < 2 or not tertiary:
        raise NotFound("the demo needs two secondary hospitals and a tertiary one in its config")
    return secondary[0], tertiary[0], secondary[1]


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
