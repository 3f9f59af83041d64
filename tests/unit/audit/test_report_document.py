"""Reading a signed report document: anything that is not one is refused with InvalidArgument
(never another exception), and the canonical bytes that are signed do not depend on key order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.audit.report import REPORT_SCHEMA, canonical_bytes, parse_report
from medalliance.errors import InvalidArgument

VALID = {
    "report": {"schema": REPORT_SCHEMA, "channel": "alliance", "period": "2026-11",
               "ledger": {"height": 3, "lastBlockHash": "00"}, "hospitals": [], "figures": []},
    "signer": {"mspId": "DistrictHCMSP", "certificate": "-", "signedAt": "2026-12-01T00:00:00+00:00"},
    "signature": "AA==",
}  # fmt: skip

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(st.binary(max_size=512))
def test_random_bytes_are_refused_as_invalid_argument(data: bytes) -> None:
    try:
        parse_report(data)
    except InvalidArgument:
        return
    raise AssertionError("random bytes were accepted as a report")


@given(JSON)
def test_random_json_is_refused_as_invalid_argument(value: Any) -> None:
    with pytest.raises(InvalidArgument):
        parse_report(json.dumps(value).encode())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param(lambda d: d["report"].update(schema="other/1"), "schema", id="another schema is refused"),
        pytest.param(lambda d: d["report"].pop("figures"), "figures", id="a report without figures is refused"),
        pytest.param(lambda d: d["signer"].pop("certificate"), "signer needs", id="a signer without a certificate is refused"),
        pytest.param(lambda d: d.update(signature=7), "base64", id="a signature that is not text is refused"),
        pytest.param(lambda d: d.update(extra=1), "report, signer and signature", id="an extra top-level field is refused"),
    ],
)  # fmt: skip
def test_each_part_of_a_report_document_is_required(change: Any, named: str) -> None:
    document = json.loads(json.dumps(VALID))
    assert parse_report(json.dumps(document).encode()) == document
    change(document)
    with pytest.raises(InvalidArgument, match=named):
        parse_report(json.dumps(document).encode())


def test_canonical_bytes_ignore_key_order_and_keep_chinese() -> None:
    assert canonical_bytes({"b": 1, "a": "中文"}) == canonical_bytes({"a": "中文", "b": 1})
    assert canonical_bytes({"a": "中文"}) == '{"a":"中文"}'.encode()
