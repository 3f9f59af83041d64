"""Run simulation seeds from the command line; a failure prints the command that replays it.

python -m tests.simulation --seed 7 --n 4 --byzantine 1 --behaviour equivocate --drop 0.1
python -m tests.simulation --seeds 1000 --n 1 4 7 --swarm
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from tests.simulation.config import BEHAVIOURS, SimConfig
from tests.simulation.simulator import SimulationFailure, simulate


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    seeds = range(args.seed, args.seed + args.seeds) if args.seeds else (args.seed,)
    started, runs, failures = time.monotonic(), 0, 0
    rounds: Counter[int] = Counter()
    for n in args.n:
        for seed in seeds:
            config = _config(args, seed, n)
            runs += 1
            try:
                outcome = simulate(config)
            except SimulationFailure as failure:
                failures += 1
                print(failure, file=sys.stderr)
                continue
            rounds[outcome.rounds_max] += 1
            if not args.seeds:
                print(outcome)
    elapsed = time.monotonic() - started
    print(
        f"{runs} runs, {failures} failed, n in {args.n}, {elapsed:.1f} s; "
        f"highest round reached per run: {dict(sorted(rounds.items()))}"
    )
    return 1 if failures else 0


def _config(args: argparse.Namespace, seed: int, n: int) -> SimConfig:
    if args.swarm:
        return SimConfig.swarm(seed, n, heights=args.heights)
    f = (n - 1) // 3
    return SimConfig(
        seed=seed,
        n=n,
        byzantine=args.byzantine if args.beyond_f else min(args.byzantine, f),
        behaviour=args.behaviour,
        heights=args.heights,
        drop=args.drop,
        duplicate=args.duplicate,
        delay_max_ticks=args.delay_max_ticks,
        partitions=args.partitions,
        crashes=args.crashes,
        gst_ticks=args.gst_ticks,
        liveness_ticks=args.liveness_ticks,
        reconfigure=args.reconfigure,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.simulation", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, default=0, help="the (first) seed")
    parser.add_argument("--seeds", type=int, default=0, help="run this many seeds from --seed")
    parser.add_argument("--n", type=int, nargs="+", default=[4], help="validator counts")
    parser.add_argument("--swarm", action="store_true", help="let each seed pick its faults")
    parser.add_argument("--byzantine", type=int, default=0, help="Byzantine nodes, capped at f")
    parser.add_argument("--beyond-f", action="store_true", help="allow more than f Byzantine")
    parser.add_argument("--behaviour", choices=BEHAVIOURS, default="equivocate")
    parser.add_argument("--heights", type=int, default=8, help="blocks every node must decide")
    parser.add_argument("--drop", type=float, default=0.0)
    parser.add_argument("--duplicate", type=float, default=0.0)
    parser.add_argument("--delay-max-ticks", type=int, default=10)
    parser.add_argument("--partitions", action="store_true")
    parser.add_argument("--crashes", action="store_true")
    parser.add_argument("--gst-ticks", type=int, default=0)
    parser.add_argument("--liveness-ticks", type=int, default=20_000)
    parser.add_argument(
        "--reconfigure", action="store_true", help="vote a spare node in, then one out"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
