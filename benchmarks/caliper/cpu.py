#!/usr/bin/env python3
"""CPU milliseconds per transaction of a Caliper run, per process role (docs/performance.md).

    cpu.py --dir <network folder> --txs <transactions of the run> -- ./run.sh --dir <folder> ...

Reads the kernel's counters of the running network's nodes before and after the command, and
those of every process of the command's session (npx, Caliper's manager and workers) every
half second while it runs (a worker's last half second may be missed): the same roles as
benchmarks/e2e.py, with Caliper in place of its load generator, and the ordering nodes' blocks
and signature verifications per block. Caliper's share includes its start-up and report (a few
seconds), so give it runs of thousands of transactions. Needs the repository's .venv Python (it
imports medalliance).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from medalliance.node.bootstrap import NetworkLayout

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not a package
from e2e import cpu_by_role, ordering_counters, report_cpu, report_ordering

TICKS = os.sysconf("SC_CLK_TCK")


def session_cpu(session: int, seen: dict[int, float]) -> None:
    """Note the CPU seconds so far of every process of `session` (Caliper's workers are not
    waited for by the processes that started them, so rusage of children misses them)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[3]) == session:  # user + system clock ticks, as e2e.cpu_seconds
            seen[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / TICKS


def nodes_cpu(layout: NetworkLayout, caliper: float) -> dict[str, float]:
    roles: dict[str, float] = cpu_by_role(layout)
    del roles["load generator"]  # this wrapper
    roles["Caliper"] = caliper
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
    before, blocks = nodes_cpu(layout, 0.0), ordering_counters(layout)
    seen: dict[int, float] = {}
    with subprocess.Popen(command, start_new_session=True) as process:
        while process.poll() is None:
            session_cpu(process.pid, seen)
            time.sleep(0.5)
    console = Console()
    report_cpu(before, nodes_cpu(layout, sum(seen.values())), args.txs, console)
    report_ordering(blocks, ordering_counters(layout), args.txs, console)
    return process.returncode


if __name__ == "__main__":
    sys.exit(main())
