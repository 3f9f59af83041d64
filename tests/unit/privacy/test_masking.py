"""Masking for summaries: the shape of a value survives, the value does not."""

from __future__ import annotations

from collections.abc import Callable

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

ID_NUMBER = "320102199001011234"
POLICY = {
    "name": "name",
    "idNumber": "id",
    "phone": "phone",
    "address": "address",
    "diagnosis": "keep",
    "emr": "drop",
}

# Text without the mask character, so "masked" and "unchanged" cannot be confused.
unmasked_text = st.text(st.characters(exclude_characters="*", codec="utf-8"))


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        pytest.param("张三", "张*", id="a two-character name keeps the surname"),
        pytest.param("张三丰", "张**", id="a three-character name keeps the surname"),
        pytest.param("欧阳娜娜", "欧***", id="a compound surname keeps its first character only"),
        pytest.param("Li Wei", "L* W**", id="a Latin name keeps the initial of each word"),
        pytest.param("A B", "A *", id="a name of initials keeps only the first"),
        pytest.param("张", "张", id="a one-character name has nothing to mask"),
        pytest.param("", "", id="an empty name stays empty"),
    ],
)  # fmt: skip
def test_name_masking(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        pytest.param(ID_NUMBER, "3201**********1234", id="a resident ID keeps 4 and 4"),
        pytest.param("320102900101123", "3201*******1123", id="an old 15-digit ID keeps 4 and 4"),
        pytest.param("E123456789", "******6789", id="a 10-character number keeps only its last 4"),
        pytest.param("E12345678", "*********", id="a 9-character passport number is masked whole"),
        pytest.param("12345678", "********", id="an 8-character number is masked whole"),
        pytest.param("", "", id="an empty number stays empty"),
    ],
)  # fmt: skip
def test_id_number_masking(number: str, masked: str) -> None:
    assert mask_id_number(number) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        pytest.param("13812345678", "138****5678", id="a mobile keeps 3 and 4"),
        pytest.param("+8613812345678", "+86*******5678", id="a mobile with country code keeps 3 and 4"),
        pytest.param("83123456", "****3456", id="a local number keeps only its last 4"),
        pytest.param("1234567", "*******", id="a 7-digit number is masked whole"),
    ],
)  # fmt: skip
def test_phone_masking(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        pytest.param("北京市朝阳区建国路88号", "北京市*********", id="an address keeps its city"),
        pytest.param("南京鼓楼区中山路1号", "南京鼓楼区*****", id="an address keeps its district"),
        pytest.param("江苏省南京市鼓楼区中山路1号", "江苏省南京市********", id="an address keeps province and city"),
        pytest.param("黑龙江省哈尔滨市南岗区西大直街92号", "黑龙江省哈尔************", id="without a marker in 6 characters it keeps 6"),
        pytest.param("南京鼓楼区", "南京***", id="a short address keeps at most half"),
        pytest.param("", "", id="an empty address stays empty"),
    ],
)  # fmt: skip
def test_address_masking(address: str, masked: str) -> None:
    assert mask_address(address) == masked


@given(st.sampled_from([mask_id_number, mask_phone, mask_address]), unmasked_text)
def test_numbers_and_addresses_keep_their_length_and_never_come_back_whole(
    mask: Callable[[str], str], value: str
) -> None:
    masked = mask(value)
    assert len(masked) == len(value)
    if value:
        assert masked != value


@given(unmasked_text)
def test_a_name_keeps_its_length_and_never_comes_back_whole(name: str) -> None:
    masked = mask_name(name)
    assert len(masked) == len(name)
    assert masked[:1] == name[:1]
    if len(name.replace(" ", "")) > 1:
        assert masked != name


@given(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True))
def test_a_masked_resident_id_hides_birth_date_and_sequence(number: str) -> None:
    masked = mask_id_number(number)
    assert masked[4:14] == "*" * 10
    assert masked[:4] + masked[14:] == number[:4] + number[14:]


@pytest.mark.parametrize(
    ("record", "summary"),
    [
        pytest.param(
            {"name": "张三", "idNumber": ID_NUMBER, "phone": "13812345678", "address": "北京市朝阳区建国路88号", "diagnosis": "I21.0", "emr": "胸痛三小时"},
            {"name": "张*", "idNumber": "3201**********1234", "phone": "138****5678", "address": "北京市*********", "diagnosis": "I21.0"},
            id="each named field is masked kept or dropped by its rule",
        ),
        pytest.param({"name": "张三", "ward": "3", "notes": "…"}, {"name": "张*"}, id="fields the policy does not name are dropped"),
        pytest.param({"diagnosis": "I21.0"}, {"diagnosis": "I21.0"}, id="fields missing from the record are left out"),
        pytest.param({"phone": None, "name": "张三"}, {"phone": None, "name": "张*"}, id="a missing value stays missing"),
        pytest.param({"phone": 13812345678}, {"phone": "138****5678"}, id="a number is masked as its digits"),
        pytest.param({"diagnosis": {"icd10": "I21.0"}}, {"diagnosis": {"icd10": "I21.0"}}, id="a kept field may hold any value"),
    ],
)  # fmt: skip
def test_record_masking(record: dict[str, object], summary: dict[str, object]) -> None:
    assert mask_record(record, POLICY) == summary


@pytest.mark.parametrize(
    ("record", "policy", "message"),
    [
        pytest.param({"name": "张三"}, {"name": "blur"}, "masking rule for 'name'", id="an unknown rule is refused"),
        pytest.param({}, {"name": "blur"}, "masking rule for 'name'", id="an unknown rule is refused for an absent field too"),
        pytest.param({"idNumber": [ID_NUMBER]}, POLICY, "field 'idNumber' is a list", id="a list cannot be masked"),
        pytest.param({"idNumber": ID_NUMBER.encode()}, POLICY, "field 'idNumber' is a bytes", id="bytes cannot be masked"),
        pytest.param({"phone": True}, POLICY, "field 'phone' is a bool", id="a flag cannot be masked"),
    ],
)  # fmt: skip
def test_records_that_cannot_be_masked_are_refused_without_their_values(
    record: dict[str, object], policy: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message) as refused:
        mask_record(record, policy)
    assert ID_NUMBER not in str(refused.value)
    assert "张三" not in str(refused.value)


@given(
    st.dictionaries(st.sampled_from([*POLICY, "ward", "notes"]), st.text(min_size=1)),
)
def test_a_summary_holds_only_fields_the_policy_keeps_or_masks(record: dict[str, str]) -> None:
    summary = mask_record(record, POLICY)
    assert set(summary) == {f for f in record if POLICY.get(f, "drop") != "drop"}
    assert "emr" not in summary
    assert all(summary[f] == record[f] for f in summary if POLICY[f] == "keep")
