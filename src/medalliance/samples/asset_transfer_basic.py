"""Fabric's `asset-transfer-basic` sample contract, behaving as its Go chaincode does.

A port of fabric-samples `asset-transfer-basic/chaincode-go/chaincode/smartcontract.go` run by
fabric-contract-api-go v2, so the sample's applications (`application-gateway-typescript` and
friends) get the same bytes back: assets stored and returned as Go's `json.Marshal` writes them,
integer arguments parsed as the Go contract API parses them, results serialised as it serialises
them (a bool as "true"/"false", an empty asset list as an empty payload), and every failure a
status 500 carrying the chaincode's own message. Pure: no clock, no I/O beyond the stub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from medalliance.contracts import Context, Contract, transaction
from medalliance.errors import ContractError
from medalliance.samples.go_json import (
    INT_MAX,
    INT_MIN,
    JsonObject,
    fix_surrogates,
    go_string,
    parse_json,
)

# `strconv.Atoi` refuses anything outside Go's 64-bit `int`.
_ATOI = re.compile(r"[+-]?[0-9]+")
# json.Unmarshal matches object keys to struct fields case-insensitively.
_FIELDS = {name.casefold(): name for name in ("AppraisedValue", "Color", "ID", "Owner", "Size")}


@dataclass(frozen=True, slots=True)
class Asset:
    """The sample's asset; `to_json` writes the fields in the Go struct's (alphabetical) order."""

    id: str
    color: str
    size: int
    owner: str
    appraised_value: int

    def to_json(self) -> str:
        """The asset as Go's `json.Marshal` writes it: compact, fields in declaration order."""
        return (
            f'{{"AppraisedValue":{self.appraised_value},"Color":{go_string(self.color)},'
            f'"ID":{go_string(self.id)},"Owner":{go_string(self.owner)},"Size":{self.size}}}'
        )


_INITIAL_ASSETS = (
    Asset("asset1", "blue", 5, "Tomoko", 300),
    Asset("asset2", "red", 5, "Brad", 400),
    Asset("asset3", "green", 10, "Jin Soo", 500),
    Asset("asset4", "yellow", 10, "Max", 600),
    Asset("asset5", "black", 15, "Adriana", 700),
    Asset("asset6", "white", 15, "Michel", 800),
)


class AssetTransferBasic(Contract):
    """Assets keyed by ID in the world state; anyone may create, update, transfer or delete."""

    # fabric-contract-api-go names a contract after its Go type: "SmartContract:ReadAsset" works.
    name = "SmartContract"

    @transaction
    def InitLedger(self, ctx: Context) -> None:
        for asset in _INITIAL_ASSETS:
            _put(ctx, asset)

    @transaction
    def CreateAsset(
        self,
        ctx: Context,
        asset_id: str,
        color: str,
        size: str,
        owner: str,
        appraised_value: str,
    ) -> None:
        asset = _parse_asset(asset_id, color, size, owner, appraised_value)
        if ctx.stub.get_state(asset_id) is not None:
            raise ContractError(f"the asset {asset_id} already exists")
        _put(ctx, asset)

    @transaction(evaluate=True)
    def ReadAsset(self, ctx: Context, asset_id: str) -> str:
        return _read(ctx, asset_id).to_json()

    @transaction
    def UpdateAsset(
        self,
        ctx: Context,
        asset_id: str,
        color: str,
        size: str,
        owner: str,
        appraised_value: str,
    ) -> None:
        asset = _parse_asset(asset_id, color, size, owner, appraised_value)
        if ctx.stub.get_state(asset_id) is None:
            raise ContractError(f"the asset {asset_id} does not exist")
        _put(ctx, asset)

    @transaction
    def DeleteAsset(self, ctx: Context, asset_id: str) -> None:
        if ctx.stub.get_state(asset_id) is None:
            raise ContractError(f"the asset {asset_id} does not exist")
        ctx.stub.del_state(asset_id)

    @transaction(evaluate=True)
    def AssetExists(self, ctx: Context, asset_id: str) -> str:
        # The Go contract API returns a bool as `fmt.Sprint` prints it.
        return "true" if ctx.stub.get_state(asset_id) is not None else "false"

    @transaction
    def TransferAsset(self, ctx: Context, asset_id: str, new_owner: str) -> str:
        """Give the asset to `new_owner`; returns the previous owner."""
        asset = _read(ctx, asset_id)
        _put(ctx, replace(asset, owner=new_owner))
        return asset.owner

    @transaction(evaluate=True)
    def GetAllAssets(self, ctx: Context) -> str:
        """Every asset in key order, as a JSON array.

        With no assets the Go sample returns a nil slice, which fabric-contract-api-go serialises
        as an empty payload, not "[]" (`JSONSerializer.ToString` skips nil values); so do we.
        """
        # An open range ("", "") covers every simple key of the namespace, as in Fabric.
        assets = [_decode(key, raw) for key, raw in ctx.stub.get_state_by_range("", "")]
        if not assets:
            return ""
        return "[" + ",".join(asset.to_json() for asset in assets) + "]"


def _parse_asset(asset_id: str, color: str, size: str, owner: str, appraised_value: str) -> Asset:
    # Go converts every argument before the function runs, in parameter order, and names a
    # parameter by its position after the context: param2 is size, param4 appraisedValue.
    return Asset(
        asset_id, color, _go_int(size, "param2"), owner, _go_int(appraised_value, "param4")
    )


def _go_int(value: str, param: str) -> int:
    """An `int` argument as fabric-contract-api-go converts it: `strconv.Atoi`, "" meaning 0."""
    if not value:
        return 0
    if _ATOI.fullmatch(value) and INT_MIN <= int(value) <= INT_MAX:
        return int(value)
    raise ContractError(
        f"error managing parameter {param}. conversion error. "
        f"cannot convert passed value {value} to int"
    )


def _read(ctx: Context, asset_id: str) -> Asset:
    raw = ctx.stub.get_state(asset_id)
    if raw is None:
        raise ContractError(f"the asset {asset_id} does not exist")
    return _decode(asset_id, raw)


def _put(ctx: Context, asset: Asset) -> None:
    ctx.stub.put_state(asset.id, asset.to_json().encode())


def _decode(key: str, raw: bytes) -> Asset:
    """A stored value read as Go's `json.Unmarshal` into the Asset struct would read it.

    Keys match the field names exactly or case-insensitively, unknown keys and nulls are
    ignored, missing fields stay zero; a value of the wrong type is refused.
    """
    try:
        document = parse_json(raw)
    except ValueError as exc:
        raise ContractError(f"the value of {key} is not an asset: {exc}") from None
    if document is None:  # Go: unmarshalling `null` into a struct leaves it zero
        document = JsonObject()
    if not isinstance(document, JsonObject):
        raise ContractError(f"the value of {key} is not an asset: not a JSON object")
    fields: dict[str, object] = {}
    for name, value in document:  # in document order: a repeated key's last value wins
        field = _FIELDS.get(name.casefold())
        if field is not None and value is not None:
            fields[field] = value
    return Asset(
        id=_string_field(key, fields, "ID"),
        color=_string_field(key, fields, "Color"),
        size=_int_field(key, fields, "Size"),
        owner=_string_field(key, fields, "Owner"),
        appraised_value=_int_field(key, fields, "AppraisedValue"),
    )


def _string_field(key: str, fields: dict[str, object], name: str) -> str:
    value = fields.get(name, "")
    if not isinstance(value, str):
        raise ContractError(f"the value of {key} is not an asset: {name} is not a string")
    return fix_surrogates(value)


def _int_field(key: str, fields: dict[str, object], name: str) -> int:
    value = fields.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not INT_MIN <= value <= INT_MAX:
        raise ContractError(f"the value of {key} is not an asset: {name} is not an int")
    return value
