"""The e2e stress run (issue 18): every e2e test N times while both cores are kept busy.

`make stress` (or `python -m tests.stress [--runs 5] [--load N] [PATH ...] [-- PYTEST ARGS]`)
runs pytest over the selection (default tests/e2e) `--runs` times in a row, each run with its
own JUnit report, while `--load` busy-loop processes (default: one per core, at the same
priority as the tests, so that they really compete for the CPU) run beside it. It then prints
one line per test that failed at least once: its id, runs, failures and the first line of its
first error, and exits 1 if any did (0: the run is clean). docs/testing.md says how to read it.

The summary is pure (`outcomes`, `summary`) so tests/unit/test_stress.py checks it on
reports it writes itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUSY_LOOP = "while True: pass"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One test's result in one run: failed (or errored) with its first error line, or not."""

    test_id: str
    failed: bool
    first_line: str = ""
    skipped: bool = False


@dataclass(frozen=True, slots=True)
class Row:
    """One test over every run."""

    test_id: str
    runs: int
    failures: int
    first_error: str
    skipped: int = 0  # runs in which it was skipped: a skip hides a flake as well as a pass


def outcomes(report: str) -> list[Outcome]:
    """The outcomes of a pytest JUnit XML report; a skipped test counts as run, not failed,
    and keeps its reason (the summary lists it: a skip hides a flake)."""
    root = ET.fromstring(report)
    found = []
    for case in root.iter("testcase"):
        path = (case.get("classname") or "").replace(".", "/")
        test_id = f"{path}.py::{case.get('name')}" if path else str(case.get("name"))
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is None:
            skip = case.find("skipped")
            reason = "" if skip is None else (skip.get("message") or "").strip()
            found.append(
                Outcome(test_id, False, reason.splitlines()[0] if reason else "", skip is not None)
            )
            continue
        text = (problem.get("message") or problem.text or "").strip()
        found.append(Outcome(test_id, failed=True, first_line=text.splitlines()[0] if text else ""))
    return found


def summary(runs: Iterable[Sequence[Outcome]]) -> list[Row]:
    """Per test: in how many runs it ran, how many of those it failed, its first error line;
    tests that failed at least once first, most failures first, then by id."""
    counts: dict[str, list[int]] = {}
    errors: dict[str, str] = {}
    for run in runs:
        for outcome in run:
            ran_failed_skipped = counts.setdefault(outcome.test_id, [0, 0, 0])
            ran_failed_skipped[0] += 1
            if outcome.failed:
                ran_failed_skipped[1] += 1
                errors.setdefault(outcome.test_id, outcome.first_line)
            elif outcome.skipped:
                ran_failed_skipped[2] += 1
                errors.setdefault(outcome.test_id, outcome.first_line)
    rows = [
        Row(t, ran, failed, errors.get(t, ""), skipped)
        for t, (ran, failed, skipped) in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r.failures, r.test_id))


def render(rows: Sequence[Row], runs: int, seconds: float) -> str:
    failing = [r for r in rows if r.failures]
    lines = [
        f"stress: {len(rows)} tests x {runs} runs in {seconds / 60:.1f} min; "
        + (f"{len(failing)} failed at least once" if failing else "clean")
    ]
    lines += [f"{r.test_id}  runs={r.runs} failures={r.failures}  {r.first_error}" for r in failing]
    lines += [
        f"skipped: {r.test_id}  runs={r.runs} skipped={r.skipped}  {r.first_error}"
        for r in rows
        if r.skipped and not r.failures
    ]
    return "\n".join(lines)


@contextmanager
def cpu_load(workers: int) -> Iterator[list[int]]:
    """`workers` busy-loop processes at our own priority for the duration; their pids."""
    procs = [
        subprocess.Popen([sys.executable, "-c", BUSY_LOOP], stdin=subprocess.DEVNULL)
        for _ in range(workers)
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args:
        extra = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
    parser = argparse.ArgumentParser(prog="python -m tests.stress", description=__doc__)
    parser.add_argument("paths", nargs="*", default=["tests/e2e"], help="what pytest runs")
    parser.add_argument("--runs", type=int, default=5, help="runs of the selection (5)")
    parser.add_argument(
        "--load", type=int, default=os.cpu_count() or 2, help="busy-loop processes (one per core)"
    )
    parser.add_argument("--reports", type=Path, help="keep the JUnit reports in this folder")
    options = parser.parse_args(args)
    if options.runs < 1 or options.load < 0:
        parser.error("--runs must be at least 1 and --load at least 0")
    reports = options.reports or Path(tempfile.mkdtemp(prefix="medalliance-stress-"))
    reports.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: list[list[Outcome]] = []
    with cpu_load(options.load) as pids:
        print(
            f"stress: {options.runs} runs of {' '.join(options.paths)} beside {len(pids)} "
            f"busy-loop processes; reports in {reports}",
            flush=True,
        )
        for run in range(1, options.runs + 1):
            report = reports / f"run-{run}.xml"
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
                *extra,
                *options.paths,
            ]
            code = subprocess.run(command, cwd=REPO, check=False).returncode
            if not report.exists():
                print(f"stress: run {run} wrote no report (pytest exit {code})", file=sys.stderr)
                return 2
            results.append(outcomes(report.read_text(encoding="utf-8")))
            print(f"stress: run {run}/{options.runs} done (pytest exit {code})", flush=True)
    rows = summary(results)
    print(render(rows, options.runs, time.monotonic() - started))
    return 1 if any(r.failures for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
