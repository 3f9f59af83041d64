"""The inputs of the hospital services: one pydantic model per form, validated once.

Pages parse their form posts and the JSON API its bodies into these same models, so a field is
checked in one place and both show the same message beside the same field (`field_errors`).
Free text (purpose, notes, feedback) is bounded here and travels only inside sealed packages:
it is never a contract argument and never logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from medalliance.alliance.referral import REJECTION_REASONS
from medalliance.errors import InvalidArgument
from medalliance.hospital.code_systems import DEPARTMENTS
from medalliance.web.i18n import N_

__all__ = [
    "URGENCIES",
    "ApplicationChoice",
    "CompleteForm",
    "FormInvalid",
    "PatientSearch",
    "ReferralForm",
    "RejectForm",
    "VisitForm",
    "field_errors",
    "parse_form",
]

# The urgency a Chinese two-way referral form asks (普通/紧急/急诊) → FHIR request-priority.
URGENCIES = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}
_ID = r"^[A-Za-z0-9._-]{1,64}$"  # the contracts' id rule (alliance/common.py check_id)
_FHIR_ID = r"^[A-Za-z0-9.-]{1,64}$"
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]{1,40}/[A-Za-z0-9.-]{1,64}$")
ICD10 = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"

ChainId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=_ID)]
FhirId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=_FHIR_ID)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class Form(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientSearch(Form):
    """Search the hospital's patients (posted, never in a URL): a name part or an identifier."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    identifier: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""


class VisitForm(Form):
    """Register a visit (就诊) of a patient of the store; a visit number is made when empty."""

    patient_id: FhirId
    visit_no: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^([A-Za-z0-9._-]{1,64})?$")] = ""  # fmt: skip


class ReferralForm(Form):
    """The referral application (转诊申请单) of a two-way referral system."""

    patient_id: FhirId
    visit_no: ChainId
    target: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    department: str
    urgency: Literal["routine", "urgent", "emergency"] = "routine"
    diagnosis_code: Annotated[str, StringConstraints(strip_whitespace=True, pattern=ICD10)]
    diagnosis_display: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]  # fmt: skip
    purpose: Text = Field(repr=False)
    records: list[str] = Field(default_factory=list, max_length=200)
    direction: Literal["UP", "DOWN"] = "UP"
    # a return (DOWN) referral's discharge summary (出院小结), when the visit has none yet
    discharge_summary: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] = Field(default="", repr=False)  # fmt: skip
    # a slot of the target to hold with the referral, RESOURCE:SLOT ("" for none)
    hold_slot: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^([A-Za-z0-9._-]{1,64}:[0-9T:.-]{1,32})?$")] = ""  # fmt: skip

    @field_validator("department")
    @classmethod
    def _known_department(cls, value: str) -> str:
        if value not in DEPARTMENTS:
            raise ValueError(N_("choose a department of the list"))
        return value

    @field_validator("records")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _REFERENCE.fullmatch(item):
                raise ValueError(N_("each selected record is Type/id, e.g. Observation/ecg-1"))
        return list(dict.fromkeys(value))


class ApplicationChoice(Form):
    """Refer the patient with an approved application of this hospital."""

    application_id: ChainId


class RejectForm(Form):
    reason_code: str
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] = Field(
        default="", repr=False
    )  # sealed for the origin hospital and its regulator; needed with OTHER

    @field_validator("reason_code")
    @classmethod
    def _known_reason(cls, value: str) -> str:
        if value not in REJECTION_REASONS:
            raise ValueError(f"choose one of {', '.join(REJECTION_REASONS)}")
        return value


class CompleteForm(Form):
    """Complete an accepted referral with the feedback (discharge summary, 出院小结)."""

    feedback: Text = Field(repr=False)
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] = "出院小结"  # fmt: skip


class FormInvalid(InvalidArgument):
    """A form or body with field errors: `fields` maps each field to what to fix (never the
    value typed, which may be a patient's name)."""

    def __init__(self, fields: dict[str, str]) -> None:
        listed = "; ".join(f"{name}: {why}" for name, why in fields.items())
        super().__init__(f"check the form: {listed}")
        self.fields = fields


def field_errors(error: ValidationError) -> dict[str, str]:
    """{field: message} of a pydantic error, without the input values."""
    found: dict[str, str] = {}
    for item in error.errors(include_input=False, include_url=False):
        name = ".".join(str(part) for part in item["loc"] if not isinstance(part, int)) or "form"
        found.setdefault(name, str(item["msg"]).removeprefix("Value error, "))
    return found


M = TypeVar("M", bound=BaseModel)


def parse_form(model: type[M], data: Mapping[str, object]) -> M:
    """`data` as `model`, or `FormInvalid` naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FormInvalid(field_errors(exc)) from None
