"""Benefit-sharing beyond flat fees, as a hospital's clerks do it in the web client: declaring a
completed referral's amount (the agreement's share of it becomes an entry) and signing a month's
statement (signed by both hospitals, the month is closed). Agreements, statements and balances
are in web/services/hospital_sharing.py."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from medalliance.alliance.settlement_terms import MAX_AMOUNT_CENTS
from medalliance.web.services.hospital_access import (
    SETTLEMENT_ROLES,
    HospitalBackend,
    Staff,
    Written,
    require_hospital_role,
    submit,
)
from medalliance.web.services.hospital_forms import ChainId, Form, FormInvalid
from medalliance.web.services.hospital_sharing import PERIOD

__all__ = ["DeclareForm", "declare_amount", "sign_statement"]


class DeclareForm(Form):
    referral_id: ChainId
    amount_cents: Annotated[int, Field(gt=0, le=MAX_AMOUNT_CENTS)]  # e.g. the settled cost


def declare_amount(
    backend: HospitalBackend, staff: Staff, agreement_id: str, form: DeclareForm
) -> Written:
    """The paying hospital's clerk declares a completed referral's amount, once."""
    require_hospital_role(backend, staff, "declare an amount", SETTLEMENT_ROLES)
    done = submit(backend, staff, "settlement", "DeclareAmount", agreement_id, form.referral_id,
                  str(form.amount_cents))  # fmt: skip
    return Written(done.tx_id, done.block)


def sign_statement(
    backend: HospitalBackend, staff: Staff, agreement_id: str, period: str
) -> Written:
    """This hospital's clerk signs the month's statement as it stands."""
    require_hospital_role(backend, staff, "sign a statement", SETTLEMENT_ROLES)
    if not PERIOD.fullmatch(period):
        raise FormInvalid({"period": "YYYY-MM"})
    done = submit(backend, staff, "settlement", "SignStatement", agreement_id, period)
    return Written(done.tx_id, done.block)
