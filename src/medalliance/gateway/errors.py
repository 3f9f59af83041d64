"""Fabric's error shape: a gRPC status whose details carry one `gateway.ErrorDetail` per node.

The details travel as a `google.rpc.Status` in the `grpc-status-details-bin` trailer; Fabric's
clients decode each `Any` in it as an `ErrorDetail{address, msp_id, message}` (protocol doc §3.7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from fabric_protos.gateway import gateway_pb2
from google.protobuf import any_pb2
from google.rpc import status_pb2

from medalliance.errors import MedallianceError

DETAILS_TRAILER = "grpc-status-details-bin"


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
    def from_error(cls, exc: MedallianceError) -> RpcFailure:
        return cls(grpc.StatusCode[exc.status.grpc], str(exc))

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
