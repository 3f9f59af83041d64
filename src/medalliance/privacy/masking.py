"""Field masking for summaries shown to parties who need less than the full record (脱敏).

张三 → 张*, 320102199001011234 → 3201**********1234, 13812345678 → 138****5678,
北京市朝阳区建国路88号 → 北京市*********. Each mask keeps the value's length (one `*` per
masked character), so a summary keeps its shape, and reveals at most the parts people are used
to seeing; no value comes back whole, except a name of one letter.

`mask_record` applies a policy by field name. A field the policy does not name is dropped, so a
field newly added to records never leaks into summaries by default. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from medalliance.errors import InvalidArgument

MASK = "*"
KEEP = "keep"
DROP = "drop"
_DISTRICT_MARKERS = ("区", "县", "市")
_ADDRESS_PREFIX_MAX = 6


def mask_name(name: str) -> str:
    """Keep the first character of each space-separated word, mask the rest: 张三 → 张*,
    张三丰 → 张**, Li Wei → L* W**. When that would reveal the whole name (every word a single
    letter, as in "A B"), only the first character is kept.
    """
    words = name.split(" ")
    masked = " ".join(w[:1] + MASK * (len(w) - 1) for w in words)
    if masked != name:
        return masked
    first, rest = name[:1], name[1:]
    return first + "".join(c if c == " " else MASK for c in rest)


def mask_id_number(number: str) -> str:
    """Keep the first 4 and last 4 characters (3201**********1234) while at least 6 in between
    are masked; a shorter number first loses its head (*****5678), then is masked whole."""
    return _keep_ends(number, head=4, tail=4, masked_min=6)


def mask_phone(phone: str) -> str:
    """Keep the first 3 and last 4 characters of a mobile number (138****5678) while at least 4
    in between are masked; a shorter number first loses its head (****3456), then is masked
    whole."""
    return _keep_ends(phone, head=3, tail=4, masked_min=4)


def mask_address(address: str) -> str:
    """Keep the province/city prefix, through the first district marker (区/县/市) within the
    first 6 characters, else the first 6 characters, and never more than half the address; mask
    the rest (北京市朝阳区建国路88号 → 北京市*********, 南京鼓楼区中山路1号 → 南京鼓楼区*****)."""
    markers = [i for m in _DISTRICT_MARKERS if 0 <= (i := address.find(m)) < _ADDRESS_PREFIX_MAX]
    prefix = min(markers) + 1 if markers else _ADDRESS_PREFIX_MAX
    keep = min(prefix, len(address) // 2)
    return address[:keep] + MASK * (len(address) - keep)


_MASKS: dict[str, Callable[[str], str]] = {
    "name": mask_name,
    "id": mask_id_number,
    "phone": mask_phone,
    "address": mask_address,
}
RULES = (*_MASKS, KEEP, DROP)


def mask_record(record: Mapping[str, object], policy: Mapping[str, str]) -> dict[str, object]:
    """A summary of `record`: each field `policy` names kept ("keep"), masked ("name", "id",
    "phone", "address") or dropped ("drop"); every field it does not name is dropped too.

    A masked field must be text or a number (masked as its decimal text); a missing field is
    left out and None stays None. Raises `InvalidArgument`, naming the field but never its
    value, for an unknown rule (before looking at the record) or a value that cannot be masked.
    """
    for name, rule in policy.items():
        if rule not in RULES:
            raise InvalidArgument(f"masking rule for {name!r} must be one of {', '.join(RULES)}")
    summary: dict[str, object] = {}
    for name, rule in policy.items():
        if name not in record or rule == DROP:
            continue
        value = record[name]
        if rule == KEEP or value is None:
            summary[name] = value
        elif isinstance(value, str | int) and not isinstance(value, bool):
            summary[name] = _MASKS[rule](str(value))
        else:
            raise InvalidArgument(
                f"field {name!r} is a {type(value).__name__}; only text or numbers are masked"
            )
    return summary


def _keep_ends(value: str, *, head: int, tail: int, masked_min: int) -> str:
    if len(value) - head - tail < masked_min:
        head = 0
    if len(value) - head - tail < masked_min:
        tail = 0
    return value[:head] + MASK * (len(value) - head - tail) + value[len(value) - tail :]
