"""The alliance operator's pages (/operator/...): nodes, channel members, the block explorer,
contracts and membership votes. Each route calls one service function
(web/services/operator_*.py) and renders; a refused vote action is shown in place."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from medalliance.errors import MedallianceError
from medalliance.web.auth import require_role
from medalliance.web.backend import WebBackend
from medalliance.web.commission_labels import CHANGE_LABELS, HEALTH_LABELS, TYPE_LABELS
from medalliance.web.core_routes import backend_of
from medalliance.web.services import operator_blocks, operator_nodes, operator_votes
from medalliance.web.staff import Staff
from medalliance.web.templating import render

router = APIRouter(prefix="/operator", include_in_schema=False)
Operator = Annotated[Staff, Depends(require_role("operator"))]
Backend = Annotated[WebBackend, Depends(backend_of)]


@router.get("/")
def home(staff: Operator) -> Response:
    return RedirectResponse("/operator/nodes", status_code=303)


@router.get("/nodes")
def nodes(request: Request, staff: Operator, backend: Backend) -> Response:
    rows = operator_nodes.nodes(backend.network, staff)
    context = {"nodes": rows, "health_labels": HEALTH_LABELS}
    return render(request, "operator/nodes.html", context, staff)


@router.get("/members")
def members(request: Request, staff: Operator, backend: Backend) -> Response:
    view = operator_nodes.channel_members(backend.network, staff)
    return render(
        request, "operator/members.html", {"view": view, "type_labels": TYPE_LABELS}, staff
    )


@router.get("/contracts")
def contracts(request: Request, staff: Operator, backend: Backend) -> Response:
    rows = operator_nodes.contracts(backend.network, staff)
    return render(request, "operator/contracts.html", {"contracts": rows}, staff)


@router.get("/blocks")
def blocks(
    request: Request, staff: Operator, backend: Backend, before: int | None = None
) -> Response:
    listing = operator_blocks.blocks(backend.network, staff, before)
    return render(request, "operator/blocks.html", {"listing": listing}, staff)


@router.get("/blocks/{number}")
def block(request: Request, number: int, staff: Operator, backend: Backend) -> Response:
    view = operator_blocks.block(backend.network, staff, number)
    return render(request, "operator/block.html", {"view": view}, staff)


def _votes_page(
    request: Request, backend: WebBackend, staff: Staff, status_code: int = 200, **extra: Any
) -> Response:
    context = {
        "votes": operator_votes.pending_votes(backend.network, staff),
        "changes": operator_votes.VOTE_CHANGES,
        "change_labels": CHANGE_LABELS,
        **extra,
    }
    return render(request, "operator/votes.html", context, staff, status_code)


@router.get("/votes")
def votes(request: Request, staff: Operator, backend: Backend) -> Response:
    return _votes_page(request, backend, staff)


@router.post("/votes")
def propose(
    request: Request,
    staff: Operator,
    backend: Backend,
    change: Annotated[str, Form(max_length=32)] = "",
    target: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    try:
        vote = operator_votes.propose(backend.network, staff, change, target)
    except MedallianceError as exc:
        return _votes_page(request, backend, staff, exc.status.http, error=str(exc))
    return _votes_page(request, backend, staff, notice=f"{vote.vote_id}: {vote.description}")


@router.post("/votes/{vote_id}/{action}")
def vote_act(
    request: Request, vote_id: str, action: str, staff: Operator, backend: Backend
) -> Response:
    try:
        if action == "sign":
            vote = operator_votes.sign(backend.network, staff, vote_id)
            return _votes_page(
                request, backend, staff, notice=f"{vote.vote_id}: {vote.description}"
            )
        if action == "submit":
            done = operator_votes.submit(backend.network, staff, vote_id)
            return _votes_page(request, backend, staff, submitted=done)
    except MedallianceError as exc:
        return _votes_page(request, backend, staff, exc.status.http, error=str(exc))
    return _votes_page(request, backend, staff, 404, error="unknown action; sign or submit")
