"""Fabric's composite keys: `\\x00 objectType \\x00 attr1 \\x00 attr2 \\x00 ...`. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from medalliance.errors import ContractError

SEPARATOR = "\x00"
MAX_RUNE = "\U0010ffff"


def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
    for part in (object_type, *attributes):
        if SEPARATOR in part or MAX_RUNE in part:
            raise ContractError("composite key parts must not contain U+0000 or U+10FFFF")
    if not object_type:
        raise ContractError("a composite key needs an object type")
    return SEPARATOR + object_type + SEPARATOR + "".join(a + SEPARATOR for a in attributes)


def split_composite_key(key: str) -> tuple[str, tuple[str, ...]]:
    if not key.startswith(SEPARATOR) or not key.endswith(SEPARATOR):
        raise ContractError("not a composite key")
    parts = key[1:-1].split(SEPARATOR)
    return parts[0], tuple(parts[1:])


def partial_key_range(object_type: str, attributes: Sequence[str]) -> tuple[str, str]:
    """[start, end) of every composite key that begins with these parts."""
    prefix = create_composite_key(object_type, attributes)
    return prefix, prefix + MAX_RUNE
