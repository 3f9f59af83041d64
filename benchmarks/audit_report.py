"""How long the commission's report takes to derive, and to verify, on a generated month.

Run: `.venv/bin/python benchmarks/audit_report.py [--episodes 160] [--rounds 3] [--data-dir DIR]`.
Generates the month of activity (app/activity_generator.py, seed 14) into a temporary folder
(or reuses `--data-dir` when it already holds one), then measures, best of `--rounds`:
deriving the report (raw block files → facts → every figure with its cited transactions), and
`verify_report` (the ledger verified from genesis, the report re-derived, every cited tx and the
signature checked). Prints blocks, transactions, facts, figures and times; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from medalliance.app.activity_generator import generate_month
from medalliance.app.audit_report import ledger_blocks, make_report, verify_report, write_report
from medalliance.app.demo import default_config_path
from medalliance.audit.report import derive_report

PERIOD = "2026-11"
LEDGER = Path("nodes") / "peer0.districthc.example.com" / "ledgers" / "alliance"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=160, help="patients in the month")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse or keep the month here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.data_dir or Path(tmp) / "net"
        generated = ""
        if not (directory / "network.yaml").exists():
            started = time.perf_counter()
            truth = generate_month(default_config_path(), directory, period=PERIOD,
                                   episodes=args.episodes)  # fmt: skip
            generated = (
                f"generated {len(truth.tx_ids)} transactions, {len(truth.referrals)} referrals "
                f"in {time.perf_counter() - started:.1f} s"
            )
        ledger = directory / LEDGER
        blocks = list(ledger_blocks(ledger))
        txs = sum(len(b.data.data) for b in blocks)
        derive_s = best(args.rounds, lambda: derive_report(ledger_blocks(ledger), PERIOD))
        derived = derive_report(ledger_blocks(ledger), PERIOD)
        report = Path(tmp) / "report.json"
        now = dt.datetime.now(dt.UTC)
        write_report(make_report(directory, PERIOD, "Auditor1", "DistrictHC", now).document, report)
        verify_s = best(args.rounds, lambda: verify_report(report, directory))
    table = Table(title=f"audit report of {PERIOD}, best of {args.rounds}")
    for column in ("blocks", "txs", "facts", "figures", "derive ms", "derive tx/s", "verify ms"):
        table.add_column(column, justify="right")
    table.add_row(
        str(len(blocks)), str(txs), str(derived.facts), str(len(derived.body["figures"])),
        f"{derive_s * 1000:.0f}", f"{txs / derive_s:,.0f}", f"{verify_s * 1000:.0f}",
    )  # fmt: skip
    console = Console()
    if generated:
        console.print(generated)
    console.print(table)


def best(rounds: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


if __name__ == "__main__":
    main()
