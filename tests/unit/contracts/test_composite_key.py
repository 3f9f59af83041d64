"""Composite keys use Fabric's format; a partial key's range holds exactly its extensions."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medalliance.contracts.composite_key import (
    create_composite_key,
    partial_key_range,
    split_composite_key,
)
from medalliance.errors import ContractError

PART = st.text(
    alphabet=st.characters(blacklist_characters="\x00\U0010ffff", blacklist_categories=("Cs",))
)


@pytest.mark.parametrize(
    ("object_type", "attrs", "key"),
    [
        pytest.param(
            "visit", ["V-1"], "\x00visit\x00V-1\x00", id="each part is followed by U+0000"
        ),
        pytest.param("visit", [], "\x00visit\x00", id="no attributes is the type prefix"),
        pytest.param(
            "h~v", ["Org1MSP", ""], "\x00h~v\x00Org1MSP\x00\x00", id="empty attributes count"
        ),
    ],
)
def test_fabric_format(object_type: str, attrs: list[str], key: str) -> None:
    assert create_composite_key(object_type, attrs) == key
    assert split_composite_key(key) == (object_type, tuple(attrs))


@pytest.mark.parametrize(
    ("object_type", "attrs"),
    [
        pytest.param("", ["a"], id="an empty object type is refused"),
        pytest.param("visit", ["a\x00b"], id="an attribute holding the separator is refused"),
        pytest.param("visit", ["a\U0010ffff"], id="an attribute holding the range end is refused"),
        pytest.param("vi\x00sit", [], id="an object type holding the separator is refused"),
    ],
)
def test_bad_parts_are_refused(object_type: str, attrs: Sequence[str]) -> None:
    with pytest.raises(ContractError):
        create_composite_key(object_type, attrs)


def test_a_simple_key_does_not_split() -> None:
    with pytest.raises(ContractError, match="not a composite key"):
        split_composite_key("visit")


@given(PART.filter(bool), st.lists(PART, max_size=3), st.lists(PART, max_size=3))
def test_a_partial_range_holds_exactly_the_extensions_of_its_prefix(
    object_type: str, prefix: list[str], rest: list[str]
) -> None:
    start, end = partial_key_range(object_type, prefix)
    key = create_composite_key(object_type, [*prefix, *rest])
    assert start <= key < end
    other = create_composite_key(object_type + "x", [*prefix, *rest])
    assert not start <= other < end
