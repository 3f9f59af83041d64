"""Seal (encrypt + wrap) and open (unwrap + decrypt) throughput of the privacy envelope.

Run: `.venv/bin/python benchmarks/privacy_crypto.py` (`--seconds 2` per measurement).
Two packages, each sealed for 3 organisations (origin, target, regulator: docs/privacy.md §2):
a small structured package (~2 KB of JSON fields) and a 2 MB attachment. Sealing is one
AES-256-GCM pass plus one HPKE wrap (an ephemeral P-256 key and one ECDH) per recipient; opening
is one HPKE unwrap plus one AES-256-GCM pass. The canonical encoding (`to_bytes` / `from_bytes`,
base64 in JSON) is timed separately. One core; prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console
from rich.table import Table

from medalliance.privacy.envelope import SealedPackage, open_package, seal
from medalliance.privacy.keys import RecipientKey, key_id

ORGS = ("HospAMSP", "HospBMSP", "RegMSP")


def structured_package() -> bytes:
    """About 2 KB of clinical fields, as a referral's structured part would carry them."""
    fields = {
        "sex": "F",
        "age": 54,
        "visit_number": "V2026112800042",
        "diagnosis": ["J18.9 肺炎", "R91 肺部结节"],
        "emr": "主诉：咳嗽两周，伴低热。现病史：" + "患者两周前受凉后出现咳嗽、咳痰。" * 28,
        "examinations": [{"code": f"LAB{i:03d}", "value": i * 1.5} for i in range(12)],
    }
    return json.dumps(fields, ensure_ascii=False).encode()


def rate(operation: Callable[[], object], seconds: float) -> tuple[float, float]:
    """Operations per second and milliseconds per operation, over at least `seconds`."""
    operation()  # warm up
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        operation()
        count += 1
    elapsed = time.perf_counter() - start
    return count / elapsed, elapsed / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()
    console = Console()
    private = {msp: ec.generate_private_key(ec.SECP256R1()) for msp in ORGS}
    recipients = [
        RecipientKey(msp, key_id(k.public_key()), k.public_key()) for msp, k in private.items()
    ]
    reader = ORGS[1]
    reader_keys = {key_id(private[reader].public_key()): private[reader]}
    packages = {
        "structured": structured_package(),
        "attachment": os.urandom(2 * 1024 * 1024),
    }
    table = Table(
        title=f"privacy envelope: {len(ORGS)} recipients, one core",
        caption="seal = encrypt + wrap per recipient; open = unwrap + decrypt",
    )
    for column in ("package", "size", "operation", "ops/s", "ms/op", "MB/s"):
        table.add_column(column, justify="left" if column in ("package", "operation") else "right")
    with console.status("measuring…"):
        for name, plaintext in packages.items():
            sealed = seal(plaintext, record_id="R-1", version=1, recipients=recipients)
            data = sealed.to_bytes()
            operations: dict[str, Callable[[], object]] = {
                "seal": lambda p=plaintext: seal(
                    p, record_id="R-1", version=1, recipients=recipients
                ),
                "open": lambda s=sealed: open_package(s, reader, reader_keys),
                "to_bytes": sealed.to_bytes,
                "from_bytes": lambda d=data: SealedPackage.from_bytes(d),
            }
            for operation, run in operations.items():
                per_second, ms = rate(run, args.seconds)
                megabytes = per_second * len(plaintext) / 1e6
                size = f"{len(plaintext) / 1024:,.1f} KiB"
                table.add_row(
                    name, size, operation, f"{per_second:,.0f}", f"{ms:.3f}", f"{megabytes:,.1f}"
                )
            overhead = len(data) - len(plaintext)
            console.print(f"{name}: encoded package {len(data):,} bytes ({overhead:+,} bytes)")
    console.print(table)


if __name__ == "__main__":
    main()
