"""The errors a gateway client raises, shaped like Fabric's Node client (protocol doc §3.7).

A failed gRPC call becomes a `GatewayError` carrying the gRPC code, the server's message and one
`ErrorDetail` per failing endorser or orderer, decoded from the `grpc-status-details-bin`
trailer. `EndorseError`, `SubmitError` and `CommitStatusError` add the transaction id, so an
application knows which transaction to look up or retry. `CommitError` is not a gRPC failure:
the transaction reached a block but was marked invalid there.

Each instance is also an instance of the `medalliance.errors` category matching its gRPC code
(ABORTED is a `Conflict`, UNAVAILABLE an `Unavailable`, ...), so `except Conflict` catches an
endorsement refusal and the CLI maps it to an exit code without knowing about the SDK.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self, cast

import grpc
from fabric_protos.gateway import gateway_pb2
from fabric_protos.peer import transaction_pb2
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from medalliance.errors import (
    CATEGORIES,
    Conflict,
    MedallianceError,
    PermissionDenied,
)

STATUS_DETAILS_KEY = "grpc-status-details-bin"

_CATEGORY_BY_CODE: dict[str, type[MedallianceError]] = {c.status.grpc: c for c in CATEGORIES}
# Fabric's gateway answers UNKNOWN only when a contract refused an Evaluate (chaincode status
# >= 400, protocol doc §3.7). The status is in the message: app/session.py `contract_refusal`
# turns it into a `ContractError` of the category that status names.
_CATEGORY_BY_CODE["UNKNOWN"] = Conflict
_CATEGORY_BY_CODE["UNAUTHENTICATED"] = PermissionDenied


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """What one endorser or orderer said when the gateway peer's request to it failed."""

    address: str
    msp_id: str
    message: str


class GatewayError(MedallianceError):
    """A failed gRPC call to the gateway peer; `code` is the `grpc.StatusCode`.

    No `details` means the gateway peer itself failed the request; otherwise there is one per
    node it asked. Constructing one gives an instance of the `medalliance.errors` category of
    `code` as well (see `_categorized`), so its `status` follows the code.
    """

    def __new__(cls, code: grpc.StatusCode, *args: object, **kwargs: object) -> Self:
        del args, kwargs  # consumed by __init__
        return cast(Self, super().__new__(_categorized(cls, _code_name(code))))

    def __init__(
        self, code: grpc.StatusCode, message: str, details: tuple[ErrorDetail, ...] = ()
    ) -> None:
        super().__init__(code, message, details)
        self.code = code
        self.message = message
        self.details = details

    def __reduce__(self) -> tuple[object, ...]:
        # The combined class is made at run time and has no importable name: rebuild from the
        # public class, so errors cross process boundaries (multiprocessing, concurrent.futures).
        public = type(self).__bases__[0] if type(self) in _COMBINED.values() else type(self)
        return (_restore, (public, self.code, self.message, self.details), self.__dict__)

    def __str__(self) -> str:
        # Fabric's message often says only "see attached details"; show them, they are the cause.
        parts = [f"{d.address} ({d.msp_id}): {d.message}" for d in self.details]
        return "; ".join([self.message, *parts]) if parts else self.message


class _TransactionError(GatewayError):
    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        details: tuple[ErrorDetail, ...] = (),
        *,
        transaction_id: str,
    ) -> None:
        super().__init__(code, message, details)
        self.transaction_id = transaction_id


class EndorseError(_TransactionError):
    """The gateway could not collect endorsements: nothing was sent for ordering."""


class SubmitError(_TransactionError):
    """Ordering refused the endorsed transaction or could not be reached; it will not commit."""


class CommitStatusError(_TransactionError):
    """The commit status could not be obtained; the transaction may still commit: ask again."""


class CommitError(Conflict):
    """The transaction was ordered into a block but marked invalid there (e.g. an MVCC conflict).

    `code` is its `TxValidationCode`; resubmitting a fresh proposal is the usual remedy.
    """

    def __init__(self, code: int, transaction_id: str) -> None:
        super().__init__(
            f"transaction {transaction_id} failed to commit with status code {code} "
            f"({validation_code_name(code)})"
        )
        self.code = code
        self.transaction_id = transaction_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.code, self.transaction_id))


def validation_code_name(code: int) -> str:
    """Fabric's name of a `TxValidationCode`, or "UNKNOWN" for a value it does not define."""
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return "UNKNOWN"


def decode_rpc_error(
    error: grpc.RpcError,
) -> tuple[grpc.StatusCode, str, tuple[ErrorDetail, ...]]:
    """The code, message and Fabric error details of a failed call, as the Node client reads them.

    Every `google.rpc.Status.details[i].value` is parsed as a `gateway.ErrorDetail` without
    looking at its type URL (protocol doc §3.7); a detail or trailer that does not decode is
    skipped, since the code and message still describe the failure.
    """
    code = (error.code() if hasattr(error, "code") else None) or grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else None
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    return code, str(message or code.name), _details_of(trailers or ())


def gateway_error(error: grpc.RpcError) -> GatewayError:
    """A `GatewayError` for a failed call not tied to a transaction (Evaluate, event streams)."""
    return GatewayError(*decode_rpc_error(error))


def transaction_error(
    cls: type[_TransactionError], error: grpc.RpcError, transaction_id: str
) -> GatewayError:
    """An `EndorseError`, `SubmitError` or `CommitStatusError` for a failed call."""
    return cls(*decode_rpc_error(error), transaction_id=transaction_id)


def _details_of(trailers: Iterable[tuple[str, str | bytes]]) -> tuple[ErrorDetail, ...]:
    for key, value in trailers:
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        details = []
        try:
            status.ParseFromString(value)
            for packed in status.details:
                detail = gateway_pb2.ErrorDetail()
                try:
                    detail.ParseFromString(packed.value)
                except DecodeError:
                    continue
                details.append(
                    ErrorDetail(str(detail.address), str(detail.msp_id), str(detail.message))
                )
        except DecodeError:
            return ()
        return tuple(details)
    return ()


def _restore(
    cls: type[GatewayError],
    code: grpc.StatusCode,
    message: str,
    details: tuple[ErrorDetail, ...],
) -> GatewayError:
    error = cls.__new__(cls, code)
    GatewayError.__init__(error, code, message, details)
    return error  # pickle then restores the remaining attributes (transaction_id)


def _code_name(code: object) -> str:
    return str(getattr(code, "name", "UNKNOWN"))


_COMBINED: dict[tuple[type[GatewayError], str], type[GatewayError]] = {}


def _categorized(cls: type[GatewayError], code_name: str) -> type[GatewayError]:
    """`cls` combined with the error category of a gRPC code, made once per pair.

    The combination keeps `cls`'s name so messages and `--json` output name the SDK error.
    Codes without a category (CANCELLED, INTERNAL, ...) keep MedallianceError's INTERNAL status.
    """
    category = _CATEGORY_BY_CODE.get(code_name)
    if category is None or issubclass(cls, category):
        return cls
    combined = _COMBINED.get((cls, code_name))
    if combined is None:
        namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        combined = type(cls.__name__, (cls, category), namespace)
        _COMBINED[(cls, code_name)] = combined
    return combined
