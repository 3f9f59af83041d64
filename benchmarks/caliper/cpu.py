#!/usr/bin/env python3
"""CPU milliseconds per transaction of a Caliper run, per process role (docs/performance.md).

    cpu.py --dir <network folder> --txs <transactions of the run> -- ./run.sh --dir <folder> ...

Reads the kernel's counters of the running network's nodes before and after the command, and
the CPU the command and everything it waited for used (npx, Caliper's manager and workers,
report): the same roles as benchmarks/e2e.py, with Caliper in place of its load generator.
Caliper's share includes its start-up and report (a few seconds), so give it runs of thousands
of transactions. Needs the repository's .venv Python (it imports medalliance).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from medalliance.node.bootstrap import NetworkLayout

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not a package
from e2e import cpu_by_role, report_cpu


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def nodes_cpu(layout: NetworkLayout) -> dict[str, float]:
    roles: dict[str, float] = cpu_by_role(layout)
    del roles["load generator"]  # this wrapper; Caliper is measured as its children
    roles["Caliper"] = children_cpu_seconds()
    return roles


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path, help="the running network's folder")
    parser.add_argument("--txs", required=True, type=int, help="transactions the run submits")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- the Caliper command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")
    layout = NetworkLayout.load(args.dir.resolve())
    before = nodes_cpu(layout)
    returncode = subprocess.run(command, check=False).returncode
    report_cpu(before, nodes_cpu(layout), args.txs, Console())
    return returncode


if __name__ == "__main__":
    sys.exit(main())
