"""Fabric's error shape: a gRPC status whose details carry one `gateway.ErrorDetail` per node.

The details travel as a `google.rpc.Status` in the `grpc-status-details-bin` trailer; Fabric's
clients decode each `Any` in it as an `ErrorDetail{address, msp_id, message}` (protocol doc §3.7).

Every failure the gateway services answer names an error *category* (medalliance.errors), never
a gRPC code: `GRPC_CODES` is the one table from category to code, so the codes Fabric's clients
see follow the categories' own `Status` and cannot drift call site by call site. Its column of
Fabric `common.Status` codes, for Broadcast and Deliver, is `network/fabric_status.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from fabric_protos.gateway import gateway_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from medalliance.errors import CATEGORIES, MedallianceError, Status, category_of

DETAILS_TRAILER = "grpc-status-details-bin"


class Unknown(MedallianceError):
    """Another node's own error, passed on without a category: Fabric's gateway and endorser
    answer it as gRPC UNKNOWN (what a Go server sends for a plain error)."""

    status = Status(grpc="UNKNOWN", http=502, exit_code=1, fabric="BAD_REQUEST")


# The one table: error category -> gRPC status code of the gateway's answer.
_ANSWERED: tuple[type[MedallianceError], ...] = (*CATEGORIES, Unknown, MedallianceError)
GRPC_CODES: dict[type[MedallianceError], grpc.StatusCode] = {
    category: grpc.StatusCode[category.status.grpc] for category in _ANSWERED
}


@dataclass(frozen=True, slots=True)
class Detail:
    address: str
    msp_id: str
    message: str


@dataclass(slots=True)
class RpcFailure(Exception):
    """A failure to answer with: status code, message and per-node details."""

    code: grpc.StatusCode
    message: str
    details: Sequence[Detail] = field(default=())

    def __str__(self) -> str:
        return self.message

    @classmethod
    def of(
        cls, category: type[MedallianceError], message: str, details: Sequence[Detail] = ()
    ) -> RpcFailure:
        """A failure of `category`, answered with that category's code from `GRPC_CODES`."""
        return cls(GRPC_CODES[category], message, details)

    @classmethod
    def from_error(cls, exc: MedallianceError) -> RpcFailure:
        """`exc` answered as its category, with its own message."""
        return cls.of(category_of(exc), str(exc))

    def trailer(self) -> tuple[tuple[str, bytes], ...]:
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in self.details:
            packed = any_pb2.Any()
            packed.Pack(
                gateway_pb2.ErrorDetail(
                    address=detail.address, msp_id=detail.msp_id, message=detail.message
                )
            )
            status.details.append(packed)
        return ((DETAILS_TRAILER, status.SerializeToString()),)


async def abort(context: grpc.aio.ServicerContext, failure: RpcFailure) -> None:
    """End the call with `failure` (raises, as `context.abort` does)."""
    await context.abort(failure.code, failure.message, trailing_metadata=failure.trailer())
