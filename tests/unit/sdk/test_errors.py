"""Failed gRPC calls become typed errors with Fabric's error details (protocol doc §3.7)."""

from __future__ import annotations

import pickle

import grpc
import pytest
from fabric_protos.gateway import gateway_pb2
from google.protobuf.any_pb2 import Any as AnyMessage
from google.rpc import status_pb2

from medalliance.errors import (
    Conflict,
    DeadlineExceeded,
    InvalidArgument,
    MedallianceError,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unavailable,
)
from medalliance.sdk import (
    CommitError,
    CommitStatusError,
    EndorseError,
    ErrorDetail,
    GatewayError,
    SubmitError,
)
from medalliance.sdk.errors import (
    STATUS_DETAILS_KEY,
    decode_rpc_error,
    gateway_error,
    transaction_error,
)


class FakeRpcError(grpc.RpcError):
    """What a failed call raises: an RpcError that is also a grpc.Call."""

    def __init__(
        self, code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, bytes], ...] = ()
    ) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers


def status_trailer(*details: gateway_pb2.ErrorDetail, type_url: str | None = None) -> bytes:
    packed = []
    for detail in details:
        any_message = AnyMessage()
        any_message.Pack(detail)
        if type_url is not None:
            any_message.type_url = type_url
        packed.append(any_message)
    status = status_pb2.Status(code=10, message="failed to endorse", details=packed)
    return bytes(status.SerializeToString())


ENDORSERS = (
    gateway_pb2.ErrorDetail(
        address="peer0.org1:7051", msp_id="Org1MSP", message="chaincode response 500, no asset"
    ),
    gateway_pb2.ErrorDetail(address="peer0.org2:9051", msp_id="Org2MSP", message="timeout"),
)


def test_error_details_are_decoded_from_the_status_trailer() -> None:
    error = FakeRpcError(
        grpc.StatusCode.ABORTED,
        "failed to endorse transaction, see attached details for more info",
        (("content-type", b"x"), (STATUS_DETAILS_KEY, status_trailer(*ENDORSERS))),
    )
    code, message, details = decode_rpc_error(error)
    assert code == grpc.StatusCode.ABORTED
    assert message == "failed to endorse transaction, see attached details for more info"
    assert details == (
        ErrorDetail("peer0.org1:7051", "Org1MSP", "chaincode response 500, no asset"),
        ErrorDetail("peer0.org2:9051", "Org2MSP", "timeout"),
    )


def test_details_are_decoded_whatever_their_type_url() -> None:
    # The Node client never looks at the type URL; neither do we.
    trailer = status_trailer(ENDORSERS[0], type_url="type.googleapis.com/other.Thing")
    error = FakeRpcError(grpc.StatusCode.ABORTED, "m", ((STATUS_DETAILS_KEY, trailer),))
    assert decode_rpc_error(error)[2][0].msp_id == "Org1MSP"


@pytest.mark.parametrize(
    "trailers",
    [
        pytest.param((), id="no trailer means the gateway peer itself failed"),
        pytest.param(((STATUS_DETAILS_KEY, b"\xff\xff"),), id="a garbled trailer is ignored"),
        pytest.param(((STATUS_DETAILS_KEY, "text"),), id="a text trailer is ignored"),
    ],
)
def test_missing_or_broken_details_keep_code_and_message(
    trailers: tuple[tuple[str, bytes], ...],
) -> None:
    error = gateway_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "no peer", trailers))
    assert (error.code, error.message, error.details) == (
        grpc.StatusCode.UNAVAILABLE,
        "no peer",
        (),
    )
    assert str(error) == "no peer"


def test_a_bare_rpc_error_is_unknown() -> None:
    code, message, details = decode_rpc_error(grpc.RpcError())
    assert (code, message, details) == (grpc.StatusCode.UNKNOWN, "UNKNOWN", ())


@pytest.mark.parametrize("cls", [EndorseError, SubmitError, CommitStatusError])
def test_transaction_errors_carry_the_transaction_id(
    cls: type[EndorseError | SubmitError | CommitStatusError],
) -> None:
    trailers = ((STATUS_DETAILS_KEY, status_trailer(ENDORSERS[0])),)
    error = transaction_error(cls, FakeRpcError(grpc.StatusCode.ABORTED, "m", trailers), "tx1")
    assert isinstance(error, cls)
    assert isinstance(error, GatewayError)
    assert error.transaction_id == "tx1"  # type: ignore[attr-defined]
    assert type(error).__name__ == cls.__name__
    assert str(error) == "m; peer0.org1:7051 (Org1MSP): chaincode response 500, no asset"


@pytest.mark.parametrize(
    ("code", "category"),
    [
        pytest.param(grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument, id="bad request"),
        pytest.param(grpc.StatusCode.NOT_FOUND, NotFound, id="unknown channel"),
        pytest.param(grpc.StatusCode.PERMISSION_DENIED, PermissionDenied, id="ACL refused"),
        pytest.param(grpc.StatusCode.UNAUTHENTICATED, PermissionDenied, id="unauthenticated"),
        pytest.param(grpc.StatusCode.FAILED_PRECONDITION, PreconditionFailed, id="no chaincode"),
        pytest.param(grpc.StatusCode.ABORTED, Conflict, id="endorsement refused"),
        pytest.param(grpc.StatusCode.UNKNOWN, Conflict, id="evaluate refused by the contract"),
        pytest.param(grpc.StatusCode.UNAVAILABLE, Unavailable, id="no orderer"),
        pytest.param(grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceeded, id="too slow"),
    ],
)
def test_each_grpc_code_maps_to_its_error_category(
    code: grpc.StatusCode, category: type[MedallianceError]
) -> None:
    for error in (
        GatewayError(code, "m"),
        EndorseError(code, "m", transaction_id="t"),
        gateway_error(FakeRpcError(code, "m")),
    ):
        assert isinstance(error, category)
        assert error.status == category.status
        assert error.code == code


@pytest.mark.parametrize("code", [grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED])
def test_codes_without_a_category_are_internal(code: grpc.StatusCode) -> None:
    error = GatewayError(code, "m")
    assert type(error) is GatewayError
    assert error.status == MedallianceError.status


def test_the_same_combination_is_one_class() -> None:
    first = EndorseError(grpc.StatusCode.ABORTED, "a", transaction_id="t")
    second = EndorseError(grpc.StatusCode.ABORTED, "b", transaction_id="u")
    assert type(first) is type(second)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        pytest.param(
            11,
            "transaction abc failed to commit with status code 11 (MVCC_READ_CONFLICT)",
            id="an MVCC conflict is named",
        ),
        pytest.param(
            10,
            "transaction abc failed to commit with status code 10 (ENDORSEMENT_POLICY_FAILURE)",
            id="a policy failure is named",
        ),
        pytest.param(
            200,
            "transaction abc failed to commit with status code 200 (UNKNOWN)",
            id="an undefined code is UNKNOWN",
        ),
    ],
)
def test_commit_errors_name_the_validation_code(code: int, message: str) -> None:
    error = CommitError(code, "abc")
    assert str(error) == message
    assert (error.code, error.transaction_id) == (code, "abc")
    assert isinstance(error, Conflict)
    assert not isinstance(error, GatewayError)


def test_errors_survive_pickling_with_their_category() -> None:
    details = (ErrorDetail("peer0:7051", "Org1MSP", "no"),)
    error = SubmitError(grpc.StatusCode.UNAVAILABLE, "m", details, transaction_id="tx1")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert isinstance(copy, Unavailable)
    assert (copy.code, copy.message, copy.details, copy.transaction_id) == (
        grpc.StatusCode.UNAVAILABLE,
        "m",
        details,
        "tx1",
    )
    commit = pickle.loads(pickle.dumps(CommitError(11, "tx2")))
    assert (commit.code, commit.transaction_id, str(commit)) == (
        11,
        "tx2",
        str(CommitError(11, "tx2")),
    )
