"""The CLI contract's two pure rules: where a `--dir` written before the command goes, and which
category (so exit code, gRPC code and HTTP status) a contract's refusal gets from its status."""

from __future__ import annotations

import pickle

import pytest

from medalliance.cli.main import _dir_after_the_command
from medalliance.errors import (
    Conflict,
    ContractError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unavailable,
)

MOVES = [
    (["--dir", "D", "visit", "show", "V-1"], ["visit", "show", "V-1", "--dir", "D"]),
    (["-d", "D", "--json", "visit", "show"], ["--json", "visit", "show", "-d", "D"]),
    (["--dir=D", "visit", "show"], ["visit", "show", "--dir=D"]),
    (["--dir", "D", "tx", "submit", "F", "--", "--json"], ["tx", "submit", "F", "--dir", "D", "--", "--json"]),
    (["visit", "show", "--reason", "--dir", "D"], ["visit", "show", "--reason", "--dir", "D"]),
    (["visit", "show", "--dir", "D", "--json"], ["visit", "show", "--dir", "D", "--json"]),
    (["--dir", "D"], ["--dir", "D"]),
    (["--", "--dir", "D", "visit"], ["--", "--dir", "D", "visit"]),
    (["--dir"], ["--dir"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "expected"),
    MOVES,
    ids=[
        "a --dir before the command goes after it",
        "a -d before the command goes after it and --json stays in front",
        "--dir=D goes after the command",
        "it goes before -- so what follows -- stays an argument",
        "words after the command are never reinterpreted",
        "a --dir after the command stays",
        "with no command the root keeps it",
        "nothing after -- is an option",
        "a --dir without its value is left for click to refuse",
    ],
)
def test_a_dir_before_the_command_is_handed_to_it(argv: list[str], expected: list[str]) -> None:
    assert _dir_after_the_command(argv) == expected


CATEGORIES = [
    (400, InvalidArgument, 2, "INVALID_ARGUMENT", 400),
    (403, PermissionDenied, 4, "PERMISSION_DENIED", 403),
    (404, NotFound, 1, "NOT_FOUND", 404),
    (409, Conflict, 1, "ABORTED", 409),
    (412, PreconditionFailed, 1, "FAILED_PRECONDITION", 400),
    (418, Conflict, 1, "ABORTED", 409),
    (500, Unavailable, 3, "UNAVAILABLE", 503),
    (503, Unavailable, 3, "UNAVAILABLE", 503),
]


@pytest.mark.parametrize(
    ("status", "category", "exit_code", "grpc", "http"),
    CATEGORIES,
    ids=[
        "a 400 refusal is bad input",
        "a 403 refusal is permission denied",
        "a 404 refusal is not found",
        "a 409 refusal is a conflict",
        "a 412 refusal is a failed precondition",
        "an unexpected 4xx is a conflict",
        "a 500 is worth a retry",
        "a 503 is worth a retry",
    ],
)
def test_a_contract_refusal_is_reported_by_its_status(
    status: int, category: type[Exception], exit_code: int, grpc: str, http: int
) -> None:
    refusal = ContractError("no", status)
    assert isinstance(refusal, ContractError)
    assert isinstance(refusal, category)
    assert (refusal.status.exit_code, refusal.status.grpc, refusal.status.http) == (
        exit_code, grpc, http
    )  # fmt: skip
    assert (str(refusal), refusal.status_code) == ("no", status)
    copy = pickle.loads(pickle.dumps(refusal))  # errors cross process boundaries
    assert (type(copy), str(copy), copy.status_code) == (type(refusal), "no", status)
