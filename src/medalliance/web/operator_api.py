"""The operator side of the JSON API (/api/v1/operator/...): the same service functions as the
operator pages, described in /openapi.json; never a transaction's arguments or payload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from medalliance.web.auth import require_role
from medalliance.web.backend import WebBackend
from medalliance.web.core_routes import backend_of
from medalliance.web.operator_models import (
    BlockListModel,
    BlockModel,
    ChannelMembersModel,
    ContractModel,
    NodeModel,
    ProposeRequest,
    VoteModel,
    VoteSubmittedModel,
)
from medalliance.web.services import operator_blocks, operator_nodes, operator_votes
from medalliance.web.staff import Staff

router = APIRouter(prefix="/api/v1/operator", tags=["operator"])
Operator = Annotated[Staff, Depends(require_role("operator"))]
Backend = Annotated[WebBackend, Depends(backend_of)]


@router.get("/nodes")
def nodes(staff: Operator, backend: Backend) -> list[NodeModel]:
    """Every node of the network with its health and block height."""
    return [
        NodeModel.model_validate(n, from_attributes=True)
        for n in operator_nodes.nodes(backend.network, staff)
    ]


@router.get("/members")
def members(staff: Operator, backend: Backend) -> ChannelMembersModel:
    """The channel's members and consenters in the configuration in force."""
    view = operator_nodes.channel_members(backend.network, staff)
    return ChannelMembersModel.model_validate(view, from_attributes=True)


@router.get("/contracts")
def contracts(staff: Operator, backend: Backend) -> list[ContractModel]:
    return [
        ContractModel.model_validate(c, from_attributes=True)
        for c in operator_nodes.contracts(backend.network, staff)
    ]


@router.get("/blocks")
def blocks(
    staff: Operator,
    backend: Backend,
    before: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    count: Annotated[int, Query(ge=1, le=operator_blocks.PAGE_BLOCKS_MAX)] = 20,
) -> BlockListModel:
    """Up to `count` blocks below `before` (default: the newest), newest first."""
    listing = operator_blocks.blocks(backend.network, staff, before, count)
    return BlockListModel.model_validate(listing, from_attributes=True)


@router.get("/blocks/{number}")
def block(number: int, staff: Operator, backend: Backend) -> BlockModel:
    """A block's hashes, commit certificate and transactions (ids, types, creators,
    contracts, function names and validation codes only)."""
    view = operator_blocks.block(backend.network, staff, number)
    return BlockModel.model_validate(view, from_attributes=True)


@router.get("/votes")
def votes(staff: Operator, backend: Backend) -> list[VoteModel]:
    return [
        VoteModel.model_validate(v, from_attributes=True)
        for v in operator_votes.pending_votes(backend.network, staff)
    ]


@router.post("/votes")
def propose(body: ProposeRequest, staff: Operator, backend: Backend) -> VoteModel:
    vote = operator_votes.propose(backend.network, staff, body.change, body.target)
    return VoteModel.model_validate(vote, from_attributes=True)


@router.post("/votes/{vote_id}/sign")
def sign(vote_id: str, staff: Operator, backend: Backend) -> VoteModel:
    vote = operator_votes.sign(backend.network, staff, vote_id)
    return VoteModel.model_validate(vote, from_attributes=True)


@router.post("/votes/{vote_id}/submit")
def submit(vote_id: str, staff: Operator, backend: Backend) -> VoteSubmittedModel:
    done = operator_votes.submit(backend.network, staff, vote_id)
    return VoteSubmittedModel.model_validate(done, from_attributes=True)
