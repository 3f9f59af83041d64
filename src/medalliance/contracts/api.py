"""How a contract is written: a class with decorated transaction functions.

```python
class VisitContract(Contract):
    name = "visit"

    @transaction
    def RegisterVisit(self, ctx: Context, visit_no: str, patient_ref: str) -> str: ...

    @transaction(evaluate=True)
    def GetVisit(self, ctx: Context, visit_no: str) -> str: ...
```
Arguments arrive as Fabric passes them (bytes, decoded as UTF-8 unless annotated `bytes`);
results are `str`, `bytes`, `None`, or a dict/list returned as compact sorted-key JSON.
"""

from __future__ import annotations

import inspect
import json
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from medalliance.errors import ContractError

if TYPE_CHECKING:
    from medalliance.contracts.stub import Stub

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__medalliance_transaction__"


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    name: str
    evaluate: bool
    params: tuple[str, ...]
    raw: tuple[bool, ...]  # per parameter: passed as bytes rather than str


@overload
def transaction(fn: F) -> F: ...
@overload
def transaction(*, evaluate: bool = False) -> Callable[[F], F]: ...
def transaction(fn: Any = None, *, evaluate: bool = False) -> Any:
    """Mark a contract method as a transaction function (`evaluate=True`: read-only)."""

    def mark(f: F) -> F:
        setattr(f, _MARK, evaluate)
        return f

    return mark(fn) if fn is not None else mark


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Who called: facts from the verified certificate, never from arguments."""

    msp_id: str
    role: str | None
    node_ou: str | None
    is_admin: bool
    id_hash: str
    # Fabric's `GetID` once base64-decoded: "x509::<subject DN>::<issuer DN>" (identity.client_id)
    id: str = ""


@dataclass(frozen=True, slots=True)
class Organization:
    """A channel member's alliance role, from the channel configuration (changed only by a
    config update): `type` is regulator, tertiary, secondary or member; `regulator` (hospitals)
    and `parent` (regulators) are MSP ids."""

    msp_id: str
    type: str
    regulator: str | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    stub: Stub
    client: ClientIdentity
    channel_id: str
    tx_id: str
    tx_timestamp_ms: int
    channel_orgs: tuple[str, ...]
    transient: Mapping[str, bytes] = field(repr=False)
    organizations: Mapping[str, Organization] = field(default_factory=dict)
    # the contract that called this one within the transaction; None when the client did
    called_by: str | None = None
    # the client's serialized SignedProposal: an external chaincode's shim reads it
    signed_proposal: bytes = field(default=b"", repr=False)
    # the endorsing peer's organisation (Fabric's `shim.GetMSPID`): private-data contracts
    # refuse a client of another organisation, whose data this peer must not disclose
    peer_msp_id: str = ""


class Contract:
    """Base class of contracts. Instances hold no per-call state."""

    name: ClassVar[str] = ""

    @classmethod
    def functions(cls) -> Mapping[str, FunctionInfo]:
        """The transaction functions of this class (computed once per class: a hot path)."""
        return _functions_of(cls)

    def invoke(self, ctx: Context, function: str, args: list[bytes]) -> bytes:
        """Dispatch one call; raises `ContractError` for an unknown function or bad arguments."""
        functions = type(self).functions()
        qualified = function.split(":", 1)
        if len(qualified) == 2 and qualified[0] == self.name:
            function = qualified[1]
        info = functions.get(function)
        if info is None:
            raise ContractError(
                f"contract {self.name} has no function {function}; functions: {', '.join(sorted(functions))}",
                404,
            )
        if len(args) != len(info.params):
            raise ContractError(
                f"{function} takes {len(info.params)} arguments, got {len(args)}", 400
            )
        values: list[str | bytes] = []
        for i, (arg, raw) in enumerate(zip(args, info.raw, strict=True)):
            if raw:
                values.append(arg)
                continue
            try:
                values.append(arg.decode("utf-8"))
            except UnicodeDecodeError:
                raise ContractError(f"argument {i + 1} of {function} is not UTF-8", 400) from None
        result = getattr(self, function)(ctx, *values)
        return encode_result(result)


def encode_result(result: object) -> bytes:
    if result is None:
        return b""
    if isinstance(result, bytes):
        return result
    if isinstance(result, str):
        return result.encode()
    if isinstance(result, (dict, list)):
        return json.dumps(
            result, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    raise TypeError(f"a contract returned {type(result).__name__}; return str, bytes, dict or list")


_FUNCTIONS: dict[type, Mapping[str, FunctionInfo]] = {}


def _functions_of(cls: type[Contract]) -> Mapping[str, FunctionInfo]:
    cached = _FUNCTIONS.get(cls)
    if cached is not None:
        return cached
    found: dict[str, FunctionInfo] = {}
    for attr, member in inspect.getmembers(cls, inspect.isfunction):
        if not hasattr(member, _MARK):
            continue
        params = list(inspect.signature(member, eval_str=True).parameters.values())[2:]
        found[attr] = FunctionInfo(
            name=attr,
            evaluate=bool(getattr(member, _MARK)),
            params=tuple(p.name for p in params),
            raw=tuple(p.annotation is bytes for p in params),
        )
    cached = _FUNCTIONS[cls] = types.MappingProxyType(found)
    return cached
