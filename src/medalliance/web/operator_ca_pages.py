"""The operator's page on the organisation's Fabric CA (/operator/ca): its identities and CRL,
register an identity (a generated enrolment secret is shown on the answer page, once), revoke an
identity or a certificate, and propose the CRL to the channel as a membership vote (it then
waits on /operator/votes for the admins' signatures). The CA's refusals and a CA that does not
answer are shown in place, with their status (web/services/operator_ca.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from medalliance.errors import MedallianceError
from medalliance.web.auth import require_role
from medalliance.web.backend import WebBackend
from medalliance.web.core_routes import backend_of
from medalliance.web.operator_models import CaRegisterRequest, CaRevokeRequest
from medalliance.web.operator_pages import _votes_page
from medalliance.web.services import operator_ca, operator_votes
from medalliance.web.staff import Staff
from medalliance.web.templating import render

router = APIRouter(prefix="/operator/ca", include_in_schema=False)
Operator = Annotated[Staff, Depends(require_role("operator"))]
Backend = Annotated[WebBackend, Depends(backend_of)]
Text = Annotated[str, Form(max_length=300)]


def _ca_page(
    request: Request, backend: WebBackend, staff: Staff, status_code: int = 200, **extra: Any
) -> Response:
    """The CA page; what the CA cannot answer is the page's error, with its status."""
    context: dict[str, Any] = {
        "roles": operator_ca.ALLIANCE_ROLES,
        "types": operator_ca.IDENTITY_TYPES,
        "reasons": operator_ca.REVOCATION_REASONS,
        **extra,
    }
    try:
        context["view"] = operator_ca.identities(backend.network, staff)
        context["crl"] = operator_ca.crl(backend.network, staff)
    except MedallianceError as exc:
        context["error"] = context.get("error") or str(exc)
        status_code = status_code if status_code != 200 else exc.status.http
    return render(request, "operator/ca.html", context, staff, status_code)


@router.get("")
def ca(request: Request, staff: Operator, backend: Backend) -> Response:
    return _ca_page(request, backend, staff)


@router.post("/identities")
def register(
    request: Request,
    staff: Operator,
    backend: Backend,
    enrollment_id: Text = "",
    type: Text = "client",
    role: Text = "",
    affiliation: Text = "",
    max_enrollments: Annotated[int, Form(ge=-1, le=1000)] = 0,
    secret: Text = "",
) -> Response:
    # The form's rules are the API's: a malformed field is a 422 naming the field, never the value.
    body = CaRegisterRequest.model_validate(
        {
            "id": enrollment_id,
            "type": type,
            "role": role or None,
            "affiliation": affiliation,
            "max_enrollments": max_enrollments,
            "secret": secret or None,
        }
    )
    try:
        done = operator_ca.register(
            backend.network, staff, body.id, type=body.type, role=body.role,
            affiliation=body.affiliation, max_enrollments=body.max_enrollments,
            secret=body.secret.get_secret_value() if body.secret is not None else None,
        )  # fmt: skip
    except MedallianceError as exc:
        return _ca_page(request, backend, staff, exc.status.http, error=str(exc))
    context = {"registered": done, "role": body.role, "type": body.type}
    return render(request, "operator/ca_registered.html", context, staff)


@router.post("/revoke")
def revoke(
    request: Request,
    staff: Operator,
    backend: Backend,
    enrollment_id: Text = "",
    serial: Text = "",
    reason: Text = "",
) -> Response:
    body = CaRevokeRequest.model_validate(
        {"id": enrollment_id.strip(), "serial": serial.strip(), "reason": reason}
    )
    try:
        done = operator_ca.revoke(
            backend.network, staff, enrollment_id=body.id, serial_hex=body.serial,
            reason=body.reason,
        )  # fmt: skip
    except MedallianceError as exc:
        return _ca_page(request, backend, staff, exc.status.http, error=str(exc))
    return _ca_page(request, backend, staff, revoked=done)


@router.post("/crl/propose")
def propose_crl(request: Request, staff: Operator, backend: Backend) -> Response:
    try:
        vote = operator_votes.propose_revocation(
            backend.network, staff, operator_ca.crl_pem(backend.network, staff)
        )
    except MedallianceError as exc:
        return _ca_page(request, backend, staff, exc.status.http, error=str(exc))
    return _votes_page(request, backend, staff, notice=f"{vote.vote_id}: {vote.description}")
