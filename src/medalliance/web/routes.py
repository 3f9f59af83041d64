"""The one list of routers the web application mounts.

The hospital part adds its pages (`/hospital/...`), JSON API (`/api/v1/...`) and FHIR REST
(`/fhir/...`); the commission and operator part adds `/commission/...`, `/operator/...` and its
JSON API: one import and one list entry each. Every route depends on `page_staff`, `api_staff` or
`require_role(...)` (web/auth.py); tests/web/test_security.py enumerates them.
"""

from __future__ import annotations

from fastapi import APIRouter

from medalliance.web import (
    commission_api,
    commission_pages,
    core_routes,
    fhir_routes,
    hospital_api,
    hospital_consultation_pages,
    hospital_pages,
    hospital_referral_pages,
    hospital_sharing_pages,
    operator_api,
    operator_ca_api,
    operator_ca_pages,
    operator_pages,
)

ROUTERS: list[APIRouter] = [
    core_routes.router,
    core_routes.api_router,
    commission_pages.router,
    commission_api.router,
    operator_pages.router,
    operator_api.router,
    operator_ca_pages.router,
    operator_ca_api.router,
    hospital_pages.router,
    hospital_referral_pages.router,
    hospital_sharing_pages.router,
    hospital_consultation_pages.router,
    hospital_api.router,
    fhir_routes.router,
]
