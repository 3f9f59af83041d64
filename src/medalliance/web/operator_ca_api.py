"""The operator's JSON API on the organisation's Fabric CA (/api/v1/operator/ca/...): the same
service functions as the CA page (web/services/operator_ca.py). A generated enrolment secret is
in the register answer only; the CA's refusals keep their status (404 unknown, 409 registered
already, 403 not allowed) and a CA that does not answer is 503."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from medalliance.web.auth import require_role
from medalliance.web.backend import WebBackend
from medalliance.web.core_routes import backend_of
from medalliance.web.operator_models import (
    CaIdentitiesModel,
    CaRegisteredModel,
    CaRegisterRequest,
    CaRevokedModel,
    CaRevokeRequest,
    CrlModel,
    VoteModel,
)
from medalliance.web.services import operator_ca, operator_votes
from medalliance.web.staff import Staff

router = APIRouter(prefix="/api/v1/operator/ca", tags=["operator"])
Operator = Annotated[Staff, Depends(require_role("operator"))]
Backend = Annotated[WebBackend, Depends(backend_of)]


@router.get("/identities")
def identities(staff: Operator, backend: Backend) -> CaIdentitiesModel:
    """The identities the organisation's CA registrar may manage."""
    view = operator_ca.identities(backend.network, staff)
    return CaIdentitiesModel.model_validate(view, from_attributes=True)


@router.post("/identities")
def register(body: CaRegisterRequest, staff: Operator, backend: Backend) -> CaRegisteredModel:
    """Register an identity with its alliance role; the generated secret is answered once."""
    done = operator_ca.register(
        backend.network,
        staff,
        body.id,
        type=body.type,
        role=body.role,
        affiliation=body.affiliation,
        max_enrollments=body.max_enrollments,
        secret=body.secret.get_secret_value() if body.secret is not None else None,
    )
    return CaRegisteredModel(id=done.id, secret=done.secret)


@router.post("/revoke")
def revoke(body: CaRevokeRequest, staff: Operator, backend: Backend) -> CaRevokedModel:
    """Revoke an identity and its certificates, or one certificate; the channel learns of it
    through a vote (`POST /api/v1/operator/ca/crl/propose`)."""
    done = operator_ca.revoke(
        backend.network, staff, enrollment_id=body.id, serial_hex=body.serial, reason=body.reason
    )
    return CaRevokedModel(id=done.id, serials=list(done.serials))


@router.get("/crl")
def crl(staff: Operator, backend: Backend) -> CrlModel:
    """The serials on the CA's CRL."""
    return CrlModel.model_validate(operator_ca.crl(backend.network, staff), from_attributes=True)


@router.post("/crl/propose")
def propose_crl(staff: Operator, backend: Backend) -> VoteModel:
    """A membership vote putting the CA's CRL on the channel (then sign and submit it)."""
    vote = operator_votes.propose_revocation(
        backend.network, staff, operator_ca.crl_pem(backend.network, staff)
    )
    return VoteModel.model_validate(vote, from_attributes=True)
