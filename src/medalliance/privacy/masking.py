"""Field masking for summaries shown to parties who need less than the full record.

张三 → 张*, 320102199001011234 → 3201**********1234, 13812345678 → 138****5678. `mask_record`
applies a policy by field name; a field the policy does not name is dropped, so a new field in a
record never leaks by default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from medalliance.errors import InvalidArgument

_DISTRICT_MARKERS = ("区", "县", "市")


def mask_name(name: str) -> str:
    """Keep the first character of each word (张三丰 → 张**, Li Wei → L* W**)."""
    return " ".join(w[:1] + "*" * (len(w) - 1) for w in name.split(" "))


def mask_id_number(number: str) -> str:
    """Keep the first 4 and last 4 characters; a number of 8 or fewer is masked whole."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


def mask_phone(phone: str) -> str:
    """Keep the first 3 and last 4 digits of a mobile number (138****5678)."""
    if len(phone) <= 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_address(address: str) -> str:
    """Keep up to the first district marker (区/县/市) within 6 characters, else at most 6
    characters and never more than half; mask the rest (北京市朝阳区… → 北京市*****…)."""
    markers = [i for m in _DISTRICT_MARKERS if 0 <= (i := address.find(m)) < 6]
    keep = min(markers) + 1 if markers else min(6, len(address) // 2)
    return address[:keep] + "*" * (len(address) - keep)


_MASKS: dict[str, Callable[[str], str]] = {
    "name": mask_name,
    "id": mask_id_number,
    "phone": mask_phone,
    "address": mask_address,
}


def mask_record(record: Mapping[str, object], policy: Mapping[str, str]) -> dict[str, object]:
    """The fields `policy` names, each kept ("keep"), masked ("name", "id", "phone",
    "address") or dropped ("drop"); every other field is dropped."""
    out: dict[str, object] = {}
    for field, rule in policy.items():
        if rule not in (*_MASKS, "keep", "drop"):
            raise InvalidArgument(
                f"masking rule for {field!r} must be keep, drop or one of {', '.join(_MASKS)}"
            )
        if field not in record or rule == "drop":
            continue
        value = record[field]
        out[field] = value if rule == "keep" else _MASKS[rule](str(value))
    return out
