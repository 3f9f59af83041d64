"""Fabric's `asset-transfer-private-data` sample contract, behaving as its Go chaincode does.

A port of the fabric-samples chaincode (run by fabric-contract-api-go v2), so its
`application-gateway-typescript` gets the same bytes and errors back. Assets live in private
data collections (`collections_config.json` beside this module, the sample's own):
`assetCollection` (both organisations) holds the public part and transfer agreements;
`<MSP>PrivateCollection` holds an organisation's appraised value. Inputs travel in the
transient map (keys `asset_properties`, `asset_value`, `asset_owner`, `asset_delete`,
`asset_purge`, `agreement_delete`), never in arguments, so they reach no block.

Owners are Fabric client ids (`x509::<subject>::<issuer>`); a client may only write through a
peer of its own organisation. A transfer needs the buyer's agreed value to hash the same as the
owner's (`GetPrivateDataHash`), which the owner's peer can check without reading the buyer's
collection. Results are Go's: a missing asset returns an empty payload, lists are JSON arrays,
every failure a status 500 with the chaincode's message. Pure: no clock, no I/O beyond the stub.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TypeVar

from medalliance.contracts import Context, Contract, create_composite_key, transaction
from medalliance.errors import ContractError
from medalliance.samples.go_json import (
    FieldTypeError,
    JsonObject,
    go_string,
    parse_json,
    struct_fields,
)

ASSET_COLLECTION = "assetCollection"
TRANSFER_AGREEMENT_TYPE = "transferAgreement"
T = TypeVar("T")


def collections_config() -> bytes:
    """The sample's collections_config.json, to give with the chaincode definition."""
    return (resources.files(__package__) / "collections_config.json").read_bytes()


@dataclass(frozen=True, slots=True)
class Asset:
    """The part of an asset both organisations see; `to_json` in the Go struct's field order."""

    object_type: str
    asset_id: str
    color: str
    size: int
    owner: str

    def to_json(self) -> str:
        return (
            f'{{"objectType":{go_string(self.object_type)},"assetID":{go_string(self.asset_id)},'
            f'"color":{go_string(self.color)},"size":{self.size},"owner":{go_string(self.owner)}}}'
        )


def _details_json(asset_id: str, appraised_value: int) -> str:
    return f'{{"assetID":{go_string(asset_id)},"appraisedValue":{appraised_value}}}'


class AssetTransferPrivateData(Contract):
    """Create, agree, transfer, delete and purge assets kept in private data collections."""

    name = "SmartContract"  # fabric-contract-api-go names a contract after its Go type

    @transaction
    def CreateAsset(self, ctx: Context) -> None:
        raw = _transient(ctx, "asset_properties", "asset not found in the transient map input")
        fields = _input(
            raw,
            "assetTransientInput",
            {"objectType": str, "assetID": str, "color": str, "size": int, "appraisedValue": int},
        )
        object_type, asset_id = _text(fields, "objectType"), _text(fields, "assetID")
        color, size, value = (
            _text(fields, "color"),
            _int(fields, "size"),
            _int(fields, "appraisedValue"),
        )
        _require(object_type, "objectType field must be a non-empty string")
        _require(asset_id, "assetID field must be a non-empty string")
        _require(color, "color field must be a non-empty string")
        _require(size > 0, "size field must be a positive integer")
        _require(value > 0, "appraisedValue field must be a positive integer")
        existing = _wrap(
            "failed to get asset", ctx.stub.get_private_data, ASSET_COLLECTION, asset_id
        )
        if existing is not None:
            raise ContractError(f"this asset already exists: {asset_id}")
        _verify_client_org_matches_peer_org(ctx, "CreateAsset")
        asset = Asset(object_type, asset_id, color, size, ctx.client.id)
        _wrap(
            "failed to put asset into private data collecton",
            ctx.stub.put_private_data,
            ASSET_COLLECTION,
            asset_id,
            asset.to_json().encode(),
        )
        _wrap(
            "failed to put asset private details",
            ctx.stub.put_private_data,
            _org_collection(ctx),
            asset_id,
            _details_json(asset_id, value).encode(),
        )

    @transaction
    def AgreeToTransfer(self, ctx: Context) -> None:
        raw = _transient(ctx, "asset_value", "asset_value key not found in the transient map")
        fields = _input(raw, "AssetPrivateDetails", {"assetID": str, "appraisedValue": int})
        asset_id = _text(fields, "assetID")
        _require(asset_id, "assetID field must be a non-empty string")
        _require(
            _int(fields, "appraisedValue") > 0, "appraisedValue field must be a positive integer"
        )
        if _read_asset(ctx, asset_id, "error reading asset") is None:
            raise ContractError(f"{asset_id} does not exist")
        _verify_client_org_matches_peer_org(ctx, "AgreeToTransfer")
        # The value's own bytes, not a re-serialisation: the owner's check compares hashes.
        _wrap(
            "failed to put asset bid",
            ctx.stub.put_private_data,
            _org_collection(ctx),
            asset_id,
            raw,
        )
        key = create_composite_key(TRANSFER_AGREEMENT_TYPE, [asset_id])
        _wrap(
            "failed to put asset bid",
            ctx.stub.put_private_data,
            ASSET_COLLECTION,
            key,
            ctx.client.id.encode(),
        )

    @transaction
    def TransferAsset(self, ctx: Context) -> None:
        raw = _transient(ctx, "asset_owner", "asset owner not found in the transient map")
        fields = _input(raw, "assetTransferTransientInput", {"assetID": str, "buyerMSP": str})
        asset_id, buyer_msp = _text(fields, "assetID"), _text(fields, "buyerMSP")
        _require(asset_id, "assetID field must be a non-empty string")
        _require(buyer_msp, "buyerMSP field must be a non-empty string")
        asset = _read_asset(ctx, asset_id, "error reading asset")
        if asset is None:
            raise ContractError(f"{asset_id} does not exist")
        _verify_client_org_matches_peer_org(ctx, "TransferAsset")
        _verify_agreement(ctx, asset_id, asset.owner, buyer_msp)
        key = create_composite_key(TRANSFER_AGREEMENT_TYPE, [asset_id])
        buyer = _wrap(
            "failed ReadTransferAgreement to find buyerID: failed to read TransferAgreement",
            ctx.stub.get_private_data,
            ASSET_COLLECTION,
            key,
        )
        if not buyer:
            raise ContractError(f"BuyerID not found in TransferAgreement for {asset_id}")
        new = Asset(asset.object_type, asset.asset_id, asset.color, asset.size, buyer.decode())
        ctx.stub.put_private_data(ASSET_COLLECTION, asset_id, new.to_json().encode())
        ctx.stub.del_private_data(_org_collection(ctx), asset_id)
        ctx.stub.del_private_data(ASSET_COLLECTION, key)

    @transaction
    def DeleteAsset(self, ctx: Context) -> None:
        raw = _transient(ctx, "asset_delete", "asset to delete not found in the transient map")
        asset_id = _text(_input(raw, "assetDelete", {"assetID": str}), "assetID")
        _require(asset_id, "assetID field must be a non-empty string")
        _verify_client_org_matches_peer_org(ctx, "DeleteAsset")
        read = ctx.stub.get_private_data
        if _wrap("failed to read asset", read, ASSET_COLLECTION, asset_id) is None:
            raise ContractError(f"asset not found: {asset_id}")
        collection = _org_collection(ctx)
        if (
            _wrap("failed to read asset from owner's Collection", read, collection, asset_id)
            is None
        ):
            raise ContractError(
                f"asset not found in owner's private Collection {collection}: {asset_id}"
            )
        _wrap("failed to delete state", ctx.stub.del_private_data, ASSET_COLLECTION, asset_id)
        ctx.stub.del_private_data(collection, asset_id)

    @transaction
    def PurgeAsset(self, ctx: Context) -> None:
        raw = _transient(ctx, "asset_purge", "asset to purge not found in the transient map")
        asset_id = _text(_input(raw, "assetPurge", {"assetID": str}), "assetID")
        _require(asset_id, "assetID field must be a non-empty string")
        _verify_client_org_matches_peer_org(ctx, "PurgeAsset")
        # No existence check, as in the sample: the asset may have been deleted already.
        purge = ctx.stub.purge_private_data
        _wrap("failed to purge state from asset collection", purge, ASSET_COLLECTION, asset_id)
        _wrap("failed to purge state from owner collection", purge, _org_collection(ctx), asset_id)

    @transaction
    def DeleteTranferAgreement(self, ctx: Context) -> None:  # sic: the sample's spelling
        raw = _transient(ctx, "agreement_delete", "asset to delete not found in the transient map")
        asset_id = _text(_input(raw, "assetDelete", {"assetID": str}), "assetID")
        _require(asset_id, "transient input ID field must be a non-empty string")
        _verify_client_org_matches_peer_org(ctx, "DeleteTranferAgreement")
        collection = _org_collection(ctx)
        key = create_composite_key(TRANSFER_AGREEMENT_TYPE, [asset_id])
        agreement = _wrap(
            "failed to read transfer_agreement", ctx.stub.get_private_data, ASSET_COLLECTION, key
        )
        if agreement is None:
            raise ContractError(f"asset's transfer_agreement does not exist: {asset_id}")
        ctx.stub.del_private_data(collection, asset_id)
        ctx.stub.del_private_data(ASSET_COLLECTION, key)

    @transaction(evaluate=True)
    def ReadAsset(self, ctx: Context, asset_id: str) -> str:
        asset = _read_asset(ctx, asset_id, None)
        return "" if asset is None else asset.to_json()

    @transaction(evaluate=True)
    def ReadAssetPrivateDetails(self, ctx: Context, collection: str, asset_id: str) -> str:
        raw = _wrap("failed to read asset details", ctx.stub.get_private_data, collection, asset_id)
        if raw is None:
            return ""
        fields = _struct(raw, "AssetPrivateDetails", {"assetID": str, "appraisedValue": int})
        if fields is None:
            return ""
        return _details_json(_text(fields, "assetID"), _int(fields, "appraisedValue"))

    @transaction(evaluate=True)
    def ReadTransferAgreement(self, ctx: Context, asset_id: str) -> str:
        key = create_composite_key(TRANSFER_AGREEMENT_TYPE, [asset_id])
        buyer = _wrap(
            "failed to read TransferAgreement", ctx.stub.get_private_data, ASSET_COLLECTION, key
        )
        if buyer is None:
            return ""
        return f'{{"assetID":{go_string(asset_id)},"buyerID":{go_string(buyer.decode("utf-8", "replace"))}}}'

    @transaction(evaluate=True)
    def GetAssetByRange(self, ctx: Context, start_key: str, end_key: str) -> str:
        """The assets with IDs in [start_key, end_key) of assetCollection, as a JSON array."""
        rows = ctx.stub.get_private_data_by_range(ASSET_COLLECTION, start_key, end_key)
        return "[" + ",".join(_asset_json(raw) for _, raw in rows) + "]"


def _asset_json(raw: bytes) -> str:
    """A stored asset re-marshalled through the Go struct (`null` stays null)."""
    asset = _decode_asset(raw)
    return "null" if asset is None else asset.to_json()


def _read_asset(ctx: Context, asset_id: str, wrapping: str | None) -> Asset | None:
    try:
        raw = _wrap("failed to read asset", ctx.stub.get_private_data, ASSET_COLLECTION, asset_id)
        return None if raw is None else _decode_asset(raw)
    except ContractError as exc:
        if wrapping is None:
            raise
        raise ContractError(f"{wrapping}: {exc}") from None


def _decode_asset(raw: bytes) -> Asset | None:
    fields = _struct(
        raw, "Asset", {"objectType": str, "assetID": str, "color": str, "size": int, "owner": str}
    )
    if fields is None:
        return None
    return Asset(
        _text(fields, "objectType"),
        _text(fields, "assetID"),
        _text(fields, "color"),
        _int(fields, "size"),
        _text(fields, "owner"),
    )


def _verify_agreement(ctx: Context, asset_id: str, owner: str, buyer_msp: str) -> None:
    """The owner transfers, and the buyer agreed to the owner's appraised value (same hash)."""
    prefix = "failed transfer verification"
    if ctx.client.id != owner:
        raise ContractError(f"{prefix}: error: submitting client identity does not own asset")
    owner_collection = _org_collection(ctx)
    buyer_collection = buyer_msp + "PrivateCollection"
    owner_hash = _wrap(
        f"{prefix}: failed to get hash of appraised value from owners collection {owner_collection}",
        ctx.stub.get_private_data_hash,
        owner_collection,
        asset_id,
    )
    if owner_hash is None:
        raise ContractError(
            f"{prefix}: hash of appraised value for {asset_id} does not exist in collection "
            f"{owner_collection}"
        )
    buyer_hash = _wrap(
        f"{prefix}: failed to get hash of appraised value from buyer collection {buyer_collection}",
        ctx.stub.get_private_data_hash,
        buyer_collection,
        asset_id,
    )
    if buyer_hash is None:
        raise ContractError(
            f"{prefix}: hash of appraised value for {asset_id} does not exist in collection "
            f"{buyer_collection}. AgreeToTransfer must be called by the buyer first"
        )
    if owner_hash != buyer_hash:
        raise ContractError(
            f"{prefix}: hash for appraised value for owner {owner_hash.hex()} does not value "
            f"for seller {buyer_hash.hex()}"
        )


def _verify_client_org_matches_peer_org(ctx: Context, function: str) -> None:
    """A client may read or write private data only through a peer of its own organisation."""
    if ctx.client.msp_id != ctx.peer_msp_id:
        raise ContractError(
            f"{function} cannot be performed: Error client from org {ctx.client.msp_id} is not "
            f"authorized to read or write private data from an org {ctx.peer_msp_id} peer"
        )


def _org_collection(ctx: Context) -> str:
    return ctx.client.msp_id + "PrivateCollection"


def _transient(ctx: Context, key: str, missing: str) -> bytes:
    value = ctx.stub.get_transient().get(key)
    if value is None:
        raise ContractError(missing)
    return value


def _input(raw: bytes, struct: str, names: Mapping[str, type]) -> dict[str, object]:
    """A transient input unmarshalled into a Go struct value: JSON null leaves it zero."""
    return _struct(raw, struct, names) or {}


def _struct(raw: bytes, struct: str, names: Mapping[str, type]) -> dict[str, object] | None:
    """`raw` unmarshalled into a pointer to Go struct `struct`: None for JSON null."""
    try:
        document = parse_json(raw)
    except ValueError as exc:
        raise ContractError(f"failed to unmarshal JSON: {exc}") from None
    if document is None:
        return None
    if not isinstance(document, JsonObject):
        kind = "array" if isinstance(document, list) else type(document).__name__
        raise ContractError(
            f"failed to unmarshal JSON: json: cannot unmarshal {kind} into Go value of type "
            f"chaincode.{struct}"
        )
    try:
        return struct_fields(document, names)
    except FieldTypeError as exc:
        raise ContractError(f"failed to unmarshal JSON: {exc.go_message(struct)}") from None


def _text(fields: Mapping[str, object], name: str) -> str:
    value = fields.get(name, "")
    assert isinstance(value, str)
    return value


def _int(fields: Mapping[str, object], name: str) -> int:
    value = fields.get(name, 0)
    assert isinstance(value, int)
    return value


def _require(condition: object, message: str) -> None:
    if not condition:
        raise ContractError(message)


def _wrap(prefix: str, call: Callable[..., T], *args: object) -> T:
    """A stub call whose refusal the sample reports as "<prefix>: <reason>"."""
    try:
        return call(*args)
    except ContractError as exc:
        raise ContractError(f"{prefix}: {exc}") from None  # Go's contract API: always 500
