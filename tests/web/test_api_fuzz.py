"""The JSON API and FHIR REST fuzzed from the app's own OpenAPI description: no 500s.

Schemathesis generates requests for every operation of /openapi.json (valid and malformed), sent
in-process with the API token of a staff member whose role the operation is for. A bounded
number of examples per operation keeps the module under a minute; the examples are derived from
the schema, not the clock, so a run is reproducible (boundaries are also tested by name).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from medalliance.web.backend import WebBackend

EXAMPLES = 15
# Who calls which part of the API: the first matching path prefix wins.
CALLER = [
    ("/api/v1/commission", "reviewer.districthc"),
    ("/api/v1/audit", "auditor.cityhc"),
    ("/api/v1/operator", "operator.cityhc"),
    ("/", "doctor.secondarya"),
]


@pytest.fixture(scope="module")
def tokens(web_backend: WebBackend) -> dict[str, str]:
    return {
        username: web_backend.accounts.issue_token(username, "fuzz").token for _, username in CALLER
    }


def test_no_operation_answers_a_server_error(web_app: FastAPI, tokens: dict[str, str]) -> None:
    # Operations are walked here rather than by schemathesis' pytest plugin, whose fixture
    # loader reaches into pytest internals that pytest 9 no longer has.
    schema = schemathesis.openapi.from_asgi("/openapi.json", web_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == "/api/v1/me" for op in operations)
    for operation in operations:
        username = next(user for prefix, user in CALLER if operation.path.startswith(prefix))
        headers = {"Authorization": f"Bearer {tokens[username]}"}

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        def call(case: Any) -> None:
            response = case.call(headers=headers)  # noqa: B023 - called before the loop moves on
            case.validate_response(response, checks=[not_a_server_error])

        call()
