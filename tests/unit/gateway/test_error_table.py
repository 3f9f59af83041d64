"""The gateway's one table from error category to gRPC code (gateway/errors.py)."""

from __future__ import annotations

import grpc
import pytest

from medalliance.errors import (
    CATEGORIES,
    Conflict,
    ContractError,
    InvalidArgument,
    MalformedMessage,
    MedallianceError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unavailable,
    UnknownChannel,
)
from medalliance.gateway.errors import GRPC_CODES, RpcFailure, Unknown

# The codes Fabric's gateway answers for each kind of failure; its clients branch on them.
FABRIC_CODES = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    PreconditionFailed: grpc.StatusCode.FAILED_PRECONDITION,
    Conflict: grpc.StatusCode.ABORTED,  # endorsement or collection failed
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    Unknown: grpc.StatusCode.UNKNOWN,  # an endorser's own error
    MedallianceError: grpc.StatusCode.INTERNAL,
}


def test_every_category_has_one_code() -> None:
    assert set(CATEGORIES) <= set(GRPC_CODES)
    for category, code in FABRIC_CODES.items():
        assert GRPC_CODES[category] is code


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (MalformedMessage("proposal"), grpc.StatusCode.INVALID_ARGUMENT),
        (UnknownChannel("ch"), grpc.StatusCode.NOT_FOUND),
        (ContractError("refused", 403), grpc.StatusCode.PERMISSION_DENIED),
        (ContractError("busy", 503), grpc.StatusCode.UNAVAILABLE),
        (MedallianceError("bug"), grpc.StatusCode.INTERNAL),
    ],
)
def test_a_domain_error_is_answered_as_its_category(error: MedallianceError, code: object) -> None:
    failure = RpcFailure.from_error(error)
    assert failure.code is code
    assert failure.message == str(error)


def test_the_trailer_carries_the_tables_code() -> None:
    from google.rpc import status_pb2

    failure = RpcFailure.of(Conflict, "failed to endorse")
    ((_, raw),) = failure.trailer()
    status = status_pb2.Status.FromString(raw)
    assert status.code == grpc.StatusCode.ABORTED.value[0]
    assert status.message == "failed to endorse"
