"""The JSON API's request and response models of the operator side (/api/v1/operator/...).

Nothing here carries a transaction's arguments or payload (services/operator_blocks.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NodeModel(BaseModel):
    name: str
    organization: str
    role: str
    endpoint: str
    health: str
    height: int | None


class MemberModel(BaseModel):
    msp_id: str
    alliance_type: str
    regulator: str
    parent: str
    endpoints: list[str]
    orders: bool


class ConsenterModel(BaseModel):
    id: int
    name: str
    endpoint: str
    msp_id: str


class ChannelMembersModel(BaseModel):
    channel: str
    sequence: int
    config_block: int
    members: list[MemberModel]
    consenters: list[ConsenterModel]
    batch_max_count: int
    batch_timeout_ms: int


class ContractModel(BaseModel):
    name: str
    version: str
    sequence: int
    endorsement_policy: str
    deregistered: bool


class BlockSummaryModel(BaseModel):
    number: int
    transactions: int
    header_hash: str
    time: str


class BlockListModel(BaseModel):
    height: int
    blocks: list[BlockSummaryModel]


class TxModel(BaseModel):
    index: int
    tx_id: str
    type: str
    creator_msp: str
    contract: str
    function: str
    validation_code: str
    time: str


class SignatureModel(BaseModel):
    msp_id: str
    signer: str
    signature: str


class BlockModel(BaseModel):
    number: int
    data_hash: str
    previous_hash: str
    header_hash: str
    certificate_round: int | None
    signatures: list[SignatureModel]
    transactions: list[TxModel]


class VoteModel(BaseModel):
    vote_id: str
    channel: str
    description: str
    signers: list[str]
    needed: int
    signed_by_me: bool


class ProposeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    change: Literal["add-org", "remove-org", "add-orderer", "remove-orderer"]
    target: str = Field(min_length=1, max_length=128)


class VoteSubmittedModel(BaseModel):
    vote_id: str
    description: str
    tx_id: str
    block: int
