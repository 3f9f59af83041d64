"""Cost of a pseudonym through the OPRF service, and what the rate limit does to enumeration.

Run: `.venv/bin/python benchmarks/pseudonyms.py` (`--seconds 2` per measurement). Times the
client's blind and finalize and the service's evaluation of one blinded element (RFC 9497,
ristretto255-SHA512), then prints how long enumerating the resident IDs of one region and one
birth year (365 days × 1000 sequence numbers) would take a hospital at the default rate limit
(docs/privacy.md §4). One core; prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from medalliance.node.config import PseudonymRateConfig
from medalliance.privacy import oprf
from medalliance.privacy.pseudonym import blind_identifier
from privacy_crypto import rate  # run as a script: benchmarks/ is on the path

ID_NUMBER = "11010519491231002X"  # GB 11643's example number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()
    key = oprf.generate_key()
    pending = blind_identifier("resident-id", ID_NUMBER)
    evaluated = oprf.blind_evaluate(key, pending.element)
    operations: dict[str, Callable[[], object]] = {
        "client: normalise + blind": lambda: blind_identifier("resident-id", ID_NUMBER),
        "service: evaluate one element": lambda: oprf.blind_evaluate(key, pending.element),
        "client: unblind + finalize": lambda: pending.finish(evaluated),
    }
    table = Table(title="pseudonym OPRF, one core")
    for column in ("step", "ops/s", "ms/op"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for name, operation in operations.items():
        per_s, ms = rate(operation, args.seconds)
        table.add_row(name, f"{per_s:,.0f}", f"{ms:.3f}")
    console = Console()
    console.print(table)
    limits = PseudonymRateConfig()
    candidates = 365 * 1000
    minutes = max(0, candidates - limits.burst) / limits.per_minute
    console.print(
        f"enumerating one region and birth year ({candidates:,} candidates) at the default "
        f"limit ({limits.burst} burst, {limits.per_minute:g}/min per hospital): "
        f"{minutes / 60 / 24:.0f} days, every request logged at the regulator"
    )


if __name__ == "__main__":
    main()
