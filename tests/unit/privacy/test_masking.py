"""Masking for summaries: the shape of a value survives, the value does not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.errors import InvalidArgument
from medalliance.privacy.masking import (
    mask_address,
    mask_id_number,
    mask_name,
    mask_phone,
    mask_record,
)


@pytest.mark.parametrize(
    ("mask", "value", "masked"),
    [
        pytest.param(mask_name, "张三", "张*", id="a two-character name keeps the surname"),
        pytest.param(mask_name, "张三丰", "张**", id="a three-character name keeps the surname"),
        pytest.param(mask_name, "Li Wei", "L* W**", id="a Latin name keeps each initial"),
        pytest.param(mask_id_number, "320102199001011234", "3201**********1234", id="an ID keeps 4 and 4"),
        pytest.param(mask_phone, "13812345678", "138****5678", id="a mobile keeps 3 and 4"),
        pytest.param(mask_address, "北京市朝阳区建国路88号", "北京市*********", id="an address keeps its city"),
        pytest.param(mask_address, "南京鼓楼区中山路1号", "南京鼓楼区*****", id="an address keeps its district"),
    ],
)  # fmt: skip
def test_masks(mask: object, value: str, masked: str) -> None:
    assert mask(value) == masked  # type: ignore[operator]


@given(st.text(alphabet="0123456789X", min_size=9, max_size=20))
def test_masked_numbers_keep_their_length_and_lose_their_middle(number: str) -> None:
    for mask in (mask_id_number, mask_phone):
        masked = mask(number)
        assert len(masked) == len(number)
        assert masked != number
        assert "*" in masked


def test_a_record_keeps_only_what_the_policy_names() -> None:
    record = {
        "name": "张三",
        "idNumber": "320102199001011234",
        "diagnosis": "I21.0",
        "emr": "…",
        "ward": "3",
    }
    policy = {"name": "name", "idNumber": "id", "diagnosis": "keep", "emr": "drop"}
    assert mask_record(record, policy) == {
        "name": "张*",
        "idNumber": "3201**********1234",
        "diagnosis": "I21.0",
    }
    with pytest.raises(InvalidArgument, match="masking rule"):
        mask_record(record, {"name": "blur"})
