"""The commission's monthly report: every figure with the transactions it came from, signed.

Issue 14: "every figure can be checked by anyone holding the ledger". `derive_report` reads raw
blocks from genesis, turns them into facts (`facts_of_block`) and figures (`indicators`), and
names, for each figure, every transaction it was derived from (tx id, block, position). The
report also pins the ledger it was derived from: its height and the last block's header hash.
`sign_report` signs the report's canonical JSON bytes with a commission user's identity and
embeds the certificate; `check_report` re-derives a report from the blocks it claims and names
the first difference — period, ledger, a cited transaction, a figure — and only then checks the
signature and that the signer is an auditor or reviewer of a regulator in the channel's MSPs.

Pure: no clock (signing time is an argument), no files; the caller reads the blocks.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fabric_protos.common import common_pb2

from medalliance.audit.facts import Fact, facts_of_block
from medalliance.audit.figures import Figure, indicators
from medalliance.errors import InvalidArgument, MedallianceError, PermissionDenied
from medalliance.identity.signing import Signer
from medalliance.ledger.block import header_hash, transactions_filter
from medalliance.ledger.channel_config import ChannelConfig
from medalliance.ledger.config_update import is_config_block
from medalliance.ledger.tx import MalformedTransaction, parse_envelope

__all__ = [
    "REPORT_SCHEMA",
    "SIGNER_ROLES",
    "Derivation",
    "canonical_bytes",
    "check_report",
    "check_signer",
    "derive_report",
    "parse_report",
    "sign_report",
]

REPORT_SCHEMA = "medalliance.audit-report/1"
SIGNER_ROLES = ("auditor", "reviewer")  # a commission's users who may state its figures
HOSPITAL_TYPES = ("secondary", "tertiary")
VALID = 0


@dataclass(frozen=True, slots=True)
class Derivation:
    """What the blocks say for one period: the report body and what a verifier checks."""

    body: dict[str, Any]  # the unsigned report (JSON-ready)
    config: ChannelConfig  # the channel configuration in force after the last block
    codes: Mapping[str, int]  # every transaction's validation code, by tx id
    facts: int  # how many facts the blocks gave


def derive_report(
    blocks: Iterable[common_pb2.Block], period: str, *, height: int | None = None
) -> Derivation:
    """Derive the report of `period` from a channel's blocks, genesis first, through block
    `height - 1` (None: every block given). Raises `InvalidArgument` for a malformed period or
    no blocks; fewer blocks than `height` is the caller's to check (`body["ledger"]["height"]`)."""
    config: ChannelConfig | None = None
    facts: list[Fact] = []
    codes: dict[str, int] = {}
    where: dict[str, tuple[int, int]] = {}
    last: common_pb2.Block | None = None
    for block in blocks:
        number = int(block.header.number)
        if height is not None and number >= height:
            break
        filter_ = transactions_filter(block)
        # The configuration in force: genesis, then every VALID config update.
        if config is None or (is_config_block(block) and filter_ and filter_[0] == VALID):
            config = ChannelConfig.from_block(block)
        else:
            block_facts = facts_of_block(block, config.channel_id)
            facts.extend(block_facts)
            for fact in block_facts:
                where.setdefault(fact.tx_id, (fact.block, fact.tx_index))
            codes.update(_codes(block, filter_))
        last = block
    if config is None or last is None:
        raise InvalidArgument("no blocks to derive a report from: the ledger has no genesis block")
    hospitals = sorted(
        msp_id for msp_id, org in config.orgs.items() if org.alliance_type in HOSPITAL_TYPES
    )
    figures = indicators(facts, period, hospitals)
    body = {
        "schema": REPORT_SCHEMA,
        "channel": config.channel_id,
        "period": period,
        "ledger": {
            "height": int(last.header.number) + 1,
            "lastBlockHash": header_hash(last.header).hex(),
        },
        "hospitals": hospitals,
        "figures": [_figure(f, where) for f in figures],
    }
    return Derivation(body, config, codes, len(facts))


def _codes(block: common_pb2.Block, filter_: bytes) -> dict[str, int]:
    out: dict[str, int] = {}
    for index, data in enumerate(block.data.data):
        try:
            tx_id = parse_envelope(bytes(data)).header.tx_id
        except MalformedTransaction:
            continue
        if tx_id and tx_id not in out:
            out[tx_id] = filter_[index] if index < len(filter_) else -1
    return out


def _figure(figure: Figure, where: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    sources = []
    for tx_id in figure.sources:
        block, index = where.get(tx_id, (-1, -1))  # a source always has a fact: see facts.py
        sources.append({"txId": tx_id, "block": block, "index": index})
    return {
        "indicator": figure.indicator,
        "hospital": figure.hospital,
        "period": figure.period,
        "value": figure.value,
        "unit": figure.unit,
        "sources": sources,
    }


def canonical_bytes(value: Any) -> bytes:
    """The bytes that are signed: sorted keys, no spaces, UTF-8 (Chinese as is)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_report(body: Mapping[str, Any], signer: Signer, signed_at: dt.datetime) -> dict[str, Any]:
    """The signed report document: the body, who signed (MSP id, certificate, time) and the
    signature over the canonical bytes of both."""
    signed = {
        "report": dict(body),
        "signer": {
            "mspId": signer.msp_id,
            "certificate": signer.cert_pem.decode(),
            "signedAt": signed_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
        },
    }
    signature = signer.sign(canonical_bytes(signed))
    return {**signed, "signature": base64.b64encode(signature).decode()}


def parse_report(data: bytes) -> dict[str, Any]:
    """A signed report document from its file's bytes; `InvalidArgument` saying what is wrong
    when it is not one (the figures are checked against the ledger, not here)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidArgument(
            "the report is not JSON; pass the file `audit report` wrote"
        ) from None
    if not isinstance(document, dict) or set(document) != {"report", "signer", "signature"}:
        raise InvalidArgument("the report must be an object with report, signer and signature")
    report, signer = document["report"], document["signer"]
    if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
        raise InvalidArgument(f"the report's schema must be {REPORT_SCHEMA}")
    for key, kind in (("channel", str), ("period", str), ("ledger", dict), ("figures", list)):
        if not isinstance(report.get(key), kind):
            raise InvalidArgument(f"the report's {key} is missing or malformed")
    if not isinstance(signer, dict) or not all(
        isinstance(signer.get(k), str) for k in ("mspId", "certificate", "signedAt")
    ):
        raise InvalidArgument("the report's signer needs mspId, certificate and signedAt")
    if not isinstance(document["signature"], str):
        raise InvalidArgument("the report's signature must be base64 text")
    return document


def check_report(document: Mapping[str, Any], derived: Derivation) -> str | None:
    """The first difference between a signed report and its re-derivation, None when every
    figure, every cited transaction and the signature check out. The derivation must be of
    the report's period, through the report's ledger height."""
    claimed = document["report"]
    ours = derived.body
    for figure in claimed["figures"]:
        if isinstance(figure, dict) and figure.get("period") != claimed["period"]:
            return (
                f"the report's period is {claimed['period']!r} but {_name(figure)} is of "
                f"{figure.get('period')!r}: the period was changed"
            )
    for key in ("channel", "period"):
        if claimed.get(key) != ours[key]:
            return f"the report's {key} is {claimed.get(key)!r}; the ledger gives {ours[key]!r}"
    if claimed["ledger"] != ours["ledger"]:
        return (
            f"the report was derived from a ledger of height {claimed['ledger'].get('height')} "
            f"ending in block hash {str(claimed['ledger'].get('lastBlockHash'))[:16]}…; this "
            f"ledger at that height ends in {ours['ledger']['lastBlockHash'][:16]}… "
            f"(height {ours['ledger']['height']})"
        )
    problem = _cited(claimed["figures"], derived.codes) or _figures(
        claimed["figures"], ours["figures"]
    )
    if problem is None and claimed.get("hospitals") != ours["hospitals"]:
        problem = (
            f"the report lists hospitals {claimed.get('hospitals')}; the channel has "
            f"{ours['hospitals']}"
        )
    if problem is None and claimed != ours:
        problem = "the report holds fields the derivation does not produce"
    return problem or _signature_problem(document, derived.config)


def _name(figure: Mapping[str, Any]) -> str:
    return f"figure {figure.get('indicator')} of {figure.get('hospital') or 'the region'}"


def _cited(figures: list[Any], codes: Mapping[str, int]) -> str | None:
    """Every cited transaction is on the ledger, VALID."""
    for figure in figures:
        if not isinstance(figure, dict) or not isinstance(figure.get("sources"), list):
            return "a figure of the report is malformed"
        for source in figure["sources"]:
            tx_id = source.get("txId") if isinstance(source, dict) else None
            if not isinstance(tx_id, str):
                return f"{_name(figure)} cites a malformed source"
            code = codes.get(tx_id)
            if code is None:
                return f"{_name(figure)} cites transaction {tx_id}, which is not on the ledger"
            if code != VALID:
                return f"{_name(figure)} cites transaction {tx_id}, which is not VALID"
    return None


def _figures(claimed: list[Any], ours: list[dict[str, Any]]) -> str | None:
    ours_by = {(f["indicator"], f["hospital"]): f for f in ours}
    seen = set()
    for figure in claimed:
        key = (figure.get("indicator"), figure.get("hospital"))
        seen.add(key)
        mine = ours_by.get(key)
        if mine is None:
            return f"{_name(figure)} is not an indicator the ledger gives"
        for field in ("value", "unit", "period"):
            if figure.get(field) != mine[field]:
                return (
                    f"{_name(figure)}: the report says {field} {figure.get(field)!r}, "
                    f"the ledger gives {mine[field]!r}"
                )
        if figure.get("sources") != mine["sources"]:
            said = {s.get("txId") for s in figure["sources"]}
            real = {s["txId"] for s in mine["sources"]}
            extra, missing = sorted(said - real), sorted(real - said)
            what = (
                f"cites {extra[0]}, which it was not derived from"
                if extra
                else f"omits {missing[0]}, which it was derived from"
                if missing
                else "lists its sources in another order or place"
            )
            return f"{_name(figure)} {what}"
    for key, figure in ours_by.items():
        if key not in seen:
            return f"the report omits {_name(figure)}"
    if [(f.get("indicator"), f.get("hospital")) for f in claimed] != list(ours_by):
        return "the report's figures are not in the derivation's order"
    return None


def _signature_problem(document: Mapping[str, Any], config: ChannelConfig) -> str | None:
    try:
        check_signer(document, config)
    except MedallianceError as exc:
        return str(exc)
    return None


def check_signer(document: Mapping[str, Any], config: ChannelConfig) -> str:
    """The signer's MSP id, when the signature verifies and the signer is an auditor or
    reviewer of a regulator of the channel, by a certificate of that MSP valid when signed.
    Raises `PermissionDenied` (who may sign) or `InvalidArgument` (what is malformed)."""
    signer = document["signer"]
    msp_id = signer["mspId"]
    org = config.orgs.get(msp_id)
    if org is None:
        raise PermissionDenied(f"the report is signed by {msp_id}, not a member of the channel")
    if org.alliance_type != "regulator":
        raise PermissionDenied(
            f"the report is signed by {msp_id}, a {org.alliance_type} organisation; reports are "
            "signed by a health commission's auditor"
        )
    try:
        at = dt.datetime.fromisoformat(signer["signedAt"])
        signature = base64.b64decode(document["signature"], validate=True)
    except (ValueError, binascii.Error):
        raise InvalidArgument("the report's signedAt or signature is malformed") from None
    if at.tzinfo is None:
        raise InvalidArgument("the report's signedAt must carry its time zone")
    identity = config.msps.get(msp_id).validate(signer["certificate"].encode(), at=at)
    if identity.alliance_role not in SIGNER_ROLES:
        raise PermissionDenied(
            f"the report's signer of {msp_id} has role {identity.alliance_role or 'none'}; "
            f"only {' or '.join(SIGNER_ROLES)} users sign reports"
        )
    signed = {"report": document["report"], "signer": document["signer"]}
    if not identity.verify(signature, canonical_bytes(signed)):
        raise PermissionDenied(
            "the report's signature does not verify: it was changed after signing"
        )
    return str(msp_id)
