"""Make and verify the commission's signed monthly report from ledgers on disk.

`make_report` reads the commission's own peer ledger in a network folder (raw block files, as
`ledger verify` does), derives the report of a month (audit/report.py) and signs it as one of
the commission's users. `verify_report` does what a third party does with the report and any
copy of the channel's ledger (a network folder or one node's ledger folder): verify the ledger
from its genesis block (audit/verify.py), re-derive the report through the height it names,
and name the first difference. The report file is written whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabric_protos.common import common_pb2

from medalliance.audit.report import (
    Derivation,
    canonical_bytes,
    check_report,
    check_signer,
    derive_report,
    parse_report,
    sign_report,
)
from medalliance.audit.verify import find_ledgers, verify_ledger
from medalliance.errors import InvalidArgument, NotFound, PermissionDenied
from medalliance.identity.cryptogen import load_signer
from medalliance.ledger.block import parse_block
from medalliance.ledger.block_store import read_block_records
from medalliance.node.bootstrap import NetworkLayout
from medalliance.node.channel import namespace_policy

CHANNEL = "alliance"
MAX_REPORT_BYTES = 64 * 1024 * 1024  # a month's report is a few MB; refuse anything absurd


@dataclass(frozen=True, slots=True)
class MadeReport:
    document: dict[str, Any]
    ledger: Path
    figures: int
    facts: int
    seconds: float  # the derivation's wall time (benchmarks/audit_report.py)


@dataclass(frozen=True, slots=True)
class ReportVerdict:
    """`problem` None: every figure re-derived equal, every cited tx VALID, signature good."""

    ledger: Path
    period: str
    figures: int
    cited: int
    signer: str
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_period(period: str) -> str:
    try:
        dt.datetime.strptime(period, "%Y-%m")
    except ValueError:
        raise InvalidArgument(f"--period {period!r} must be YYYY-MM, e.g. 2026-11") from None
    return period


def make_report(
    directory: Path, period: str, user: str, org: str, now: dt.datetime, channel: str = CHANNEL
) -> MadeReport:
    """Derive and sign the report of `period` as `user` of `org` (a name or MSP id) from that
    organisation's peer ledger in the network folder `directory`. Raises `PermissionDenied`
    unless the user is an auditor or reviewer of a regulator; nothing is written."""
    check_period(period)
    layout = NetworkLayout.load(directory)
    organization = layout.config.organization(org)
    if organization.type != "regulator":
        raise PermissionDenied(
            f"{organization.name} is a {organization.type} organisation; the report is made and "
            "signed by a health commission (regulator)"
        )
    signer = load_signer(layout.user_msp_dir(organization.msp_id, user), organization.msp_id)
    ledger = _own_ledger(directory, organization.domain, channel)
    started = time.perf_counter()
    derived = derive_report(ledger_blocks(ledger), period)
    seconds = time.perf_counter() - started
    document = sign_report(derived.body, signer, now)
    check_signer(document, derived.config)  # refuses a hospital's or a clerk's identity
    return MadeReport(document, ledger, len(derived.body["figures"]), derived.facts, seconds)


def write_report(document: dict[str, Any], path: Path) -> None:
    """Write atomically: a reader never sees half a report, a failure leaves no file."""
    data = json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"
    write_atomically(path, data)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        # mkstemp makes the file private; a report is for others to read (umask applies).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_report(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise NotFound(f"no report file {path}")
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise InvalidArgument(f"{path} is larger than {MAX_REPORT_BYTES} bytes: not a report")
    return parse_report(path.read_bytes())


def verify_report(report_path: Path, ledger_root: Path) -> ReportVerdict:
    """Check a signed report against a copy of the channel's ledger under `ledger_root`."""
    document = read_report(report_path)
    claimed = document["report"]
    ledger = _peer_ledger(ledger_root, str(claimed["channel"]))
    cited = sum(len(f.get("sources", [])) for f in claimed["figures"] if isinstance(f, dict))

    def verdict(problem: str | None) -> ReportVerdict:
        return ReportVerdict(
            ledger, str(claimed["period"]), len(claimed["figures"]), cited,
            str(document["signer"]["mspId"]), problem,
        )  # fmt: skip

    integrity = verify_ledger(ledger, namespace_policy)
    if not integrity.intact:
        where = f"block {integrity.bad.number}: {integrity.bad.reason}" if integrity.bad else ""
        return verdict(f"the ledger {ledger} is not intact ({where or 'world state differs'})")
    height = claimed["ledger"].get("height")
    if not isinstance(height, int) or height < 1:
        return verdict("the report's ledger height is malformed")
    if integrity.blocks < height:
        return verdict(
            f"the ledger holds {integrity.blocks} blocks; the report was derived through "
            f"block {height - 1}: verify against a more recent copy"
        )
    try:
        check_period(str(claimed["period"]))
    except InvalidArgument as exc:
        return verdict(str(exc))
    derived: Derivation = derive_report(
        ledger_blocks(ledger), str(claimed["period"]), height=height
    )
    return verdict(check_report(document, derived))


def report_digest(document: dict[str, Any]) -> str:
    """A short fingerprint of the signed content (shown on exports)."""
    import hashlib

    signed = {"report": document["report"], "signer": document["signer"]}
    return hashlib.sha256(canonical_bytes(signed)).hexdigest()


def ledger_blocks(ledger: Path) -> Iterator[common_pb2.Block]:
    """The blocks of a ledger folder, parsed from the raw block files (no index)."""
    for record in read_block_records(ledger / "blocks"):
        yield parse_block(record)


def _own_ledger(directory: Path, domain: str, channel: str) -> Path:
    for path in find_ledgers(directory / "nodes"):
        if (
            path.name == channel
            and path.parent.parent.name.startswith("peer")
            and (path.parent.parent.name.endswith(f".{domain}"))
        ):
            return path
    raise NotFound(f"no peer ledger of {domain} for channel {channel} under {directory}/nodes")


def _peer_ledger(root: Path, channel: str) -> Path:
    """`root` itself when it is a ledger; else the first peer ledger of `channel` under it
    (ordering nodes keep blocks without validation codes: facts need the peer's codes)."""
    ledgers = find_ledgers(root)
    if len(ledgers) == 1 and ledgers[0] == root:
        return root
    for path in ledgers:
        if path.name == channel and path.parent.parent.name.startswith("peer"):
            return path
    raise NotFound(f"no peer ledger of channel {channel} under {root}")
