"""FHIR R4 REST for hospital systems (`/fhir/...`, `application/fhir+json`): the shell over
web/services/hospital_fhir.py. Authenticated like the JSON API (a HIS uses an API token bound to
one of the hospital's identities; a browser session works too); reads only the caller's
hospital's store. Errors are OperationOutcomes with the status of errors.py's table (the app's
handler answers every error under /fhir that way); a malformed body changes nothing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from medalliance import __version__
from medalliance.app.referral_import import referral_task
from medalliance.errors import InvalidArgument
from medalliance.hospital.fhir_validation import validate_resource
from medalliance.web.auth import require_role
from medalliance.web.core_routes import backend_of
from medalliance.web.services import hospital_fhir as fhir
from medalliance.web.services import hospital_recognition as recognition
from medalliance.web.services.hospital_access import Written
from medalliance.web.services.hospital_fhir_create import create_referral as create_referral_from
from medalliance.web.services.hospital_referrals import sync_referrals
from medalliance.web.staff import Staff

router = APIRouter(prefix="/fhir", tags=["fhir"])
StaffDep = Annotated[Staff, Depends(require_role("doctor", "clerk"))]
FHIR_JSON = "application/fhir+json"
BODY_LIMIT = 1 << 20  # a Task update is small; a bigger body is refused before parsing


def fhir_response(resource: dict[str, Any], written: Written | None = None) -> JSONResponse:
    headers = {} if written is None else {"X-Transaction-Id": written.tx_id,
                                          "X-Block": str(written.block)}  # fmt: skip
    return JSONResponse(resource, media_type=FHIR_JSON, headers=headers)


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


@router.get("/metadata")
def metadata(request: Request, staff: StaffDep) -> JSONResponse:
    """The CapabilityStatement: exactly what this server supports."""
    return fhir_response(fhir.capability_statement(base_url(request), __version__))


@router.get("/$recognised-results")
def recognised_results(
    request: Request, staff: StaffDep, visit: str, code: str, as_of: str = ""
) -> JSONResponse:
    """Issue 19's "already done?" for a HIS: the results of `code` recognised for the patient of
    `visit` (this hospital's), as a searchset of DiagnosticReport summaries."""
    bundle = recognition.recognised_bundle(
        backend_of(request), staff, visit, code, as_of, base_url(request)
    )
    return fhir_response(bundle)


@router.get("/{resource_type}")
def search(request: Request, staff: StaffDep, resource_type: str) -> JSONResponse:
    """A searchset Bundle (`total`, paging links `_count`/`_offset`) of the hospital's own
    resources; Task by `owner`, `requester`, `status`, `patient`. Task and ServiceRequest
    searches run the hospital's connector first, so a HIS polling for `status=requested`
    sees a referral as soon as its block is committed."""
    params = dict(request.query_params)
    if len(params) != len(request.query_params.multi_items()):
        raise InvalidArgument("repeat a search parameter as one comma-separated value")
    backend = backend_of(request)
    if resource_type in ("Task", "ServiceRequest"):  # what the chain brought since, first
        sync_referrals(backend, staff)
    bundle = fhir.search_bundle(backend, staff, resource_type, params, base_url(request))
    return fhir_response(bundle)


@router.get("/{resource_type}/{resource_id}")
def read(request: Request, staff: StaffDep, resource_type: str, resource_id: str) -> JSONResponse:
    return fhir_response(fhir.read_resource(backend_of(request), staff, resource_type, resource_id))


@router.post("")
async def create_referral(request: Request, staff: StaffDep) -> JSONResponse:
    """A referral from the HIS: a transaction Bundle POSTed to the base, holding the Task and
    its ServiceRequest (BSeR), becomes the same application as the page's form; 201 with the
    outgoing Task (`draft` until the commission approves and the doctor refers; `requested`
    for a return referral made at once)."""
    bundle = await _json_body(request)
    if not isinstance(bundle, dict):
        raise InvalidArgument("the body must be a FHIR Bundle")
    backend = backend_of(request)
    started = await run_in_threadpool(create_referral_from, backend, staff, bundle)
    task = await run_in_threadpool(referral_task, backend.store(staff.msp_id), started.referral_id)
    response = fhir_response(task or {}, Written(started.tx_id, started.block))
    response.status_code = 201
    if task is not None:
        response.headers["Location"] = f"{base_url(request)}/Task/{task['id']}"
    return response


@router.put("/Task/{task_id}")
async def update_task(request: Request, staff: StaffDep, task_id: str) -> JSONResponse:
    """The referral step a Task's new status means: accepted, rejected (statusReason), completed
    (output: the feedback)."""
    task = await _json_body(request)
    if not isinstance(task, dict):
        raise InvalidArgument("the body must be a FHIR Task resource")
    issues = validate_resource(task)
    if issues:
        raise InvalidArgument("; ".join(str(issue) for issue in issues[:5]))
    return await _update(request, staff, task_id, task)


@router.patch("/Task/{task_id}")
async def patch_task(request: Request, staff: StaffDep, task_id: str) -> JSONResponse:
    """A JSON Patch of /status, /statusReason and /output (application/json-patch+json)."""
    operations = await _json_body(request)
    backend = backend_of(request)
    current = fhir.read_resource(backend, staff, "Task", task_id)
    return await _update(request, staff, task_id, fhir.apply_patch(current, operations))


async def _update(
    request: Request, staff: Staff, task_id: str, wanted: dict[str, Any]
) -> JSONResponse:
    task, written = await run_in_threadpool(
        fhir.update_task, backend_of(request), staff, task_id, wanted
    )
    return fhir_response(task, written)


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > BODY_LIMIT:
        raise InvalidArgument(f"the body is over {BODY_LIMIT} bytes")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("the body is not JSON") from None
