"""The JSON API's request and response models of the operator side (/api/v1/operator/...).

Nothing here carries a transaction's arguments or payload (services/operator_blocks.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


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


# --- the organisation's Fabric CA (/api/v1/operator/ca/...) --------------------------------------

_ENROLLMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}$"


class CaIdentityModel(BaseModel):
    id: str
    type: str
    affiliation: str
    role: str | None
    max_enrollments: int
    revoked: bool


class CaIdentitiesModel(BaseModel):
    ca_name: str
    url: str
    registrar: str
    identities: list[CaIdentityModel]


class CaRegisterRequest(BaseModel):
    """A new identity; without `secret` the CA generates one, answered once."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ENROLLMENT_ID, description="its enrollment ID (letters, digits, @._-)")
    type: Literal["client", "admin", "peer", "orderer"] = "client"
    role: Literal["doctor", "clerk", "reviewer", "auditor"] | None = None
    affiliation: str = Field(default="", max_length=256, pattern=r"^[A-Za-z0-9_.-]*$")
    max_enrollments: int = Field(default=0, ge=-1, le=1000)
    secret: SecretStr | None = Field(default=None, min_length=12, max_length=256)


class CaRegisteredModel(BaseModel):
    id: str
    secret: str | None = Field(
        description="the enrolment secret the CA generated, shown only in this answer; null "
        "when the request chose it"
    )


class CaRevokeRequest(BaseModel):
    """Revoke an identity (`id`) and all its certificates, or one certificate (`serial`, hex)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9@._-]{0,63})?$")
    serial: str = Field(default="", pattern=r"^[0-9A-Fa-f]{0,40}$")
    reason: Literal[
        "", "unspecified", "keycompromise", "cacompromise", "affiliationchanged", "superseded",
        "cessationofoperation", "certificatehold", "removefromcrl", "privilegewithdrawn",
        "aacompromise",
    ] = ""  # fmt: skip


class CaRevokedModel(BaseModel):
    id: str
    serials: list[str]


class CrlEntryModel(BaseModel):
    serial: str
    revoked_at: str


class CrlModel(BaseModel):
    ca_name: str
    this_update: str
    entries: list[CrlEntryModel]
