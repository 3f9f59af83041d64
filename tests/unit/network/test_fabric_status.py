"""The Fabric `common.Status` column of the error table (errors.py, network/fabric_status.py):
what Broadcast and Deliver answer for each error category."""

from __future__ import annotations

import pytest
from fabric_protos.common import common_pb2

from medalliance.errors import (
    CATEGORIES,
    BadSignature,
    Conflict,
    ContractError,
    DeadlineExceeded,
    DuplicateTransaction,
    InvalidArgument,
    InvalidIdentity,
    MalformedMessage,
    MedallianceError,
    NotFound,
    Overloaded,
    PermissionDenied,
    PolicyNotSatisfied,
    PreconditionFailed,
    Unavailable,
    UnknownChannel,
    category_of_fabric,
)
from medalliance.gateway.errors import GRPC_CODES
from medalliance.network.deliver import SeekError
from medalliance.network.fabric_status import FABRIC_STATUSES, fabric_status
from medalliance.node.orderer_node import _response

Status = common_pb2.Status

# What Fabric's orderer answers (broadcast.ClassifyError: a missing channel NOT_FOUND, a refusal
# FORBIDDEN, anything else BAD_REQUEST; a consenter that cannot take it SERVICE_UNAVAILABLE, on
# which clients try another node). Fabric's clients and ours branch on these.
FABRIC = {
    InvalidArgument: Status.BAD_REQUEST,
    NotFound: Status.NOT_FOUND,
    PermissionDenied: Status.FORBIDDEN,
    PreconditionFailed: Status.BAD_REQUEST,
    Conflict: Status.BAD_REQUEST,
    Overloaded: Status.SERVICE_UNAVAILABLE,
    Unavailable: Status.SERVICE_UNAVAILABLE,
    DeadlineExceeded: Status.SERVICE_UNAVAILABLE,
    MedallianceError: Status.BAD_REQUEST,  # uncategorised: Fabric's default, not a 500
}


def test_every_category_has_one_fabric_status_beside_its_grpc_code() -> None:
    assert set(FABRIC) == {*CATEGORIES, MedallianceError}
    assert set(FABRIC) == set(FABRIC_STATUSES)
    assert set(FABRIC) <= set(GRPC_CODES)  # the gateway's column, same rows
    for category, status in FABRIC.items():
        assert FABRIC_STATUSES[category] == status, category.__name__


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (MalformedMessage("envelope"), Status.BAD_REQUEST),
        (UnknownChannel("nochannel"), Status.NOT_FOUND),
        (BadSignature("forged"), Status.FORBIDDEN),
        (InvalidIdentity("foreign certificate"), Status.FORBIDDEN),
        (PolicyNotSatisfied("not a writer"), Status.FORBIDDEN),
        (DuplicateTransaction("tx1"), Status.BAD_REQUEST),
        (Overloaded("queue full"), Status.SERVICE_UNAVAILABLE),
        (Unavailable("retired"), Status.SERVICE_UNAVAILABLE),
        (ContractError("refused", 403), Status.FORBIDDEN),
        (ContractError("busy", 503), Status.SERVICE_UNAVAILABLE),
        (MedallianceError("bug"), Status.BAD_REQUEST),
    ],
)
def test_broadcast_answers_a_domain_error_with_its_categorys_status(
    error: MedallianceError, status: int
) -> None:
    assert fabric_status(error) == status
    response = _response(error)
    assert (response.status, response.info) == (status, str(error))


@pytest.mark.parametrize(
    ("category", "status"),
    [
        (InvalidArgument, Status.BAD_REQUEST),
        (NotFound, Status.NOT_FOUND),
        (PermissionDenied, Status.FORBIDDEN),
    ],
)
def test_a_refused_seek_carries_its_categorys_status(
    category: type[MedallianceError], status: int
) -> None:
    assert SeekError(category, "refused").status == status


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("BAD_REQUEST", InvalidArgument),
        ("NOT_FOUND", NotFound),
        ("FORBIDDEN", PermissionDenied),
        ("SERVICE_UNAVAILABLE", Overloaded),
        ("INTERNAL_SERVER_ERROR", MedallianceError),  # answered by no category
        ("UNKNOWN", MedallianceError),
    ],
)
def test_a_client_reads_a_status_back_as_a_category(
    name: str, category: type[MedallianceError]
) -> None:
    assert category_of_fabric(name) is category
    if category is not MedallianceError:
        assert FABRIC_STATUSES[category] == Status.Value(name)
