"""The terms of a benefit-sharing agreement: parsing, strict validation, and which rule applies.

Pure functions only (no state, no context): the settlement contract calls them, tests call them
directly. Two formats are accepted.

Version 1 (flat fee per direction, as first deployed, still loaded as it always was):
`{"UP": {"amountCents": 5000, "payer": "target"}, "DOWN": {"amountCents": 2000, "payer": "origin"}}`

Version 2 (every section optional, at least one of fees/shares/consultation):
```
{"version": 2,
 "fees": {"UP": {"outpatient": {"amountCents": 5000, "payer": "target"},
                 "inpatient": {"amountCents": 20000, "payer": "target"}}},
 "shares": {"UP": {"basisPoints": 300, "payer": "target"}},
 "monthlyCapCents": 1000000,
 "consultation": {"amountCents": 15000, "payer": "requester"}}
```
A referral's payer is its "origin" or "target" hospital; a consultation's its "requester" or
"consultant". A share is basis points (1/100 of a percent) of an amount the paying hospital
declares, rounded down to the cent. The monthly cap bounds what each hospital pays the other under
the agreement in one calendar month (UTC).
"""

from __future__ import annotations

import json
from typing import Any

from medalliance.errors import ContractError

DIRECTIONS = ("UP", "DOWN")
REFERRAL_TYPES = ("outpatient", "examination", "inpatient")
PAYERS = ("origin", "target")
CONSULTATION_PAYERS = ("requester", "consultant")
MAX_AMOUNT_CENTS = 10**9
MAX_BASIS_POINTS = 10_000
V1_EXAMPLE = '{"UP": {"amountCents": 5000, "payer": "target"}}'
_V2_SECTIONS = ("fees", "shares", "monthlyCapCents", "consultation")


def parse_terms(text: str) -> dict[str, Any]:
    """Validated, normalised terms from their JSON text; a 400 naming the bad field otherwise."""
    try:
        parsed = json.loads(text)
    except ValueError:
        raise ContractError(f"terms must be JSON such as {V1_EXAMPLE}", 400) from None
    if isinstance(parsed, dict) and "version" in parsed:
        return _v2(parsed)
    return _v1(parsed)


def _v1(parsed: object) -> dict[str, Any]:
    if not isinstance(parsed, dict) or not parsed or not set(parsed) <= set(DIRECTIONS):
        raise ContractError(f"terms name UP and/or DOWN, such as {V1_EXAMPLE}", 400)
    for direction, term in parsed.items():
        amount = term.get("amountCents") if isinstance(term, dict) else None
        if (
            not isinstance(term, dict)
            or set(term) != {"amountCents", "payer"}
            or term["payer"] not in PAYERS
            or not _cents(amount)
        ):
            raise ContractError(
                f"the {direction} term needs amountCents (0 to {MAX_AMOUNT_CENTS}) and payer "
                f"(origin or target), such as {V1_EXAMPLE}",
                400,
            )
    return {d: {"amountCents": t["amountCents"], "payer": t["payer"]} for d, t in parsed.items()}


def _v2(parsed: dict[str, Any]) -> dict[str, Any]:
    if parsed["version"] != 2:
        raise ContractError("terms.version must be 2 (or absent for flat v1 terms)", 400)
    _keys(parsed, "terms", ("version", *_V2_SECTIONS))
    if not {"fees", "shares", "consultation"} & set(parsed):
        raise ContractError("terms need at least one of fees, shares, consultation", 400)
    terms: dict[str, Any] = {"version": 2}
    if "fees" in parsed:
        fees = _object(parsed["fees"], "terms.fees", DIRECTIONS)
        terms["fees"] = {
            direction: {
                kind: _fee(term, f"terms.fees.{direction}.{kind}", PAYERS)
                for kind, term in _object(
                    by_type, f"terms.fees.{direction}", REFERRAL_TYPES
                ).items()
            }
            for direction, by_type in fees.items()
        }
    if "shares" in parsed:
        shares = _object(parsed["shares"], "terms.shares", DIRECTIONS)
        terms["shares"] = {d: _share(s, f"terms.shares.{d}") for d, s in shares.items()}
    if "monthlyCapCents" in parsed:
        if not _cents(parsed["monthlyCapCents"]):
            raise ContractError(
                f"terms.monthlyCapCents must be whole cents from 0 to {MAX_AMOUNT_CENTS}", 400
            )
        terms["monthlyCapCents"] = parsed["monthlyCapCents"]
    if "consultation" in parsed:
        terms["consultation"] = _fee(
            parsed["consultation"], "terms.consultation", CONSULTATION_PAYERS
        )
    return terms


def _keys(value: dict[str, Any], field: str, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ContractError(
            f"{field} has unknown field {unknown[0]!r}; allowed: {', '.join(allowed)}", 400
        )


def _object(value: object, field: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise ContractError(f"{field} must be an object naming {', '.join(allowed)}", 400)
    _keys(value, field, allowed)
    return value


def _cents(value: object) -> bool:
    # bool is an int in Python; True is not one cent.
    return type(value) is int and 0 <= value <= MAX_AMOUNT_CENTS


def _fee(value: object, field: str, payers: tuple[str, ...]) -> dict[str, Any]:
    term = _object(value, field, ("amountCents", "payer"))
    if not _cents(term.get("amountCents")):
        raise ContractError(
            f"{field}.amountCents must be whole cents from 0 to {MAX_AMOUNT_CENTS}", 400
        )
    if term.get("payer") not in payers:
        raise ContractError(f"{field}.payer must be one of {', '.join(payers)}", 400)
    return {"amountCents": term["amountCents"], "payer": term["payer"]}


def _share(value: object, field: str) -> dict[str, Any]:
    term = _object(value, field, ("basisPoints", "payer"))
    points = term.get("basisPoints")
    if type(points) is not int or not 0 < points <= MAX_BASIS_POINTS:
        raise ContractError(
            f"{field}.basisPoints must be a whole number from 1 to {MAX_BASIS_POINTS}", 400
        )
    if term.get("payer") not in PAYERS:
        raise ContractError(f"{field}.payer must be one of {', '.join(PAYERS)}", 400)
    return {"basisPoints": points, "payer": term["payer"]}


def referral_fee(terms: dict[str, Any], direction: str, referral_type: str) -> Any:
    """The flat fee term for a completed referral, or None when the terms have none."""
    if terms.get("version") == 2:
        return terms.get("fees", {}).get(direction, {}).get(referral_type)
    return terms.get(direction)  # v1: one fee per direction, whatever the type


def share_term(terms: dict[str, Any], direction: str) -> Any:
    return terms.get("shares", {}).get(direction) if terms.get("version") == 2 else None


def consultation_term(terms: dict[str, Any]) -> Any:
    return terms.get("consultation") if terms.get("version") == 2 else None


def monthly_cap(terms: dict[str, Any]) -> int | None:
    cap = terms.get("monthlyCapCents") if terms.get("version") == 2 else None
    return cap if isinstance(cap, int) else None


def share_of(amount_cents: int, basis_points: int) -> int:
    """A share in whole cents, rounded down (the payer never pays a fraction of a cent more
    than agreed); integer arithmetic only, so every endorser computes the same cents."""
    return amount_cents * basis_points // MAX_BASIS_POINTS


def terms_lines(terms: dict[str, Any]) -> list[str]:
    """Terms in words, one rule a line (for the CLI and the web pages)."""
    if terms.get("version") != 2:
        return [f"{d}: {_cents_text(t['amountCents'])} paid by the {t['payer']}" for d, t in terms.items()]  # fmt: skip
    lines = [
        f"{d} {kind}: {_cents_text(t['amountCents'])} paid by the {t['payer']}"
        for d, by_type in terms.get("fees", {}).items()
        for kind, t in by_type.items()
    ]
    lines += [
        f"{d}: {t['basisPoints'] / 100:g}% of the declared amount, paid by the {t['payer']}"
        for d, t in terms.get("shares", {}).items()
    ]
    if "consultation" in terms:
        t = terms["consultation"]
        lines.append(f"consultation: {_cents_text(t['amountCents'])} paid by the {t['payer']}")
    if "monthlyCapCents" in terms:
        lines.append(f"cap: {_cents_text(terms['monthlyCapCents'])} per payer and month")
    return lines


def _cents_text(cents: int) -> str:
    return f"{cents / 100:.2f}"
