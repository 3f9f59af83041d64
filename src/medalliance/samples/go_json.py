"""JSON as Go's `encoding/json` writes and reads it, for the ports of Fabric's Go samples.

Fabric's sample applications compare the bytes a Go chaincode returns, and a private-data
sample compares hashes of JSON values across organisations, so the ports must write exactly what
`json.Marshal` writes (compact, HTML characters and U+2028/9 escaped) and read what
`json.Unmarshal` accepts into a struct (object keys matched to field names case-insensitively,
unknown keys and nulls ignored, a value of the wrong type refused). Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

# Go's `int` is 64 bits on the platforms Fabric runs on.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
# encoding/json escapes these even in compact output (HTML safety, JavaScript line terminators).
_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_KIND = {str: "string", int: "number", float: "number", bool: "bool", list: "array"}


def go_string(value: str) -> str:
    """A JSON string as encoding/json writes it (HTML characters and U+2028/9 escaped)."""
    return json.dumps(value, ensure_ascii=False).translate(_GO_ESCAPES)


class JsonObject(list[tuple[str, object]]):
    """A JSON object's members in document order, repeats kept (`json.loads` pairs hook)."""


def parse_json(raw: bytes) -> object:
    """A document with objects as `JsonObject`; raises `ValueError` for what Go refuses."""
    return json.loads(
        raw.decode("utf-8", "replace"), object_pairs_hook=JsonObject, parse_constant=_refuse
    )


class FieldTypeError(ValueError):
    """A member whose JSON type cannot fill its struct field (Go's `UnmarshalTypeError`)."""

    def __init__(self, field: str, json_kind: str, go_type: str) -> None:
        super().__init__(field, json_kind, go_type)
        self.field, self.json_kind, self.go_type = field, json_kind, go_type

    def go_message(self, struct: str) -> str:
        """The error text Go gives for struct type `struct` (e.g. "assetTransientInput")."""
        return (
            f"json: cannot unmarshal {self.json_kind} into Go struct field "
            f"{struct}.{self.field} of type {self.go_type}"
        )


def struct_fields(document: JsonObject, names: Mapping[str, type]) -> dict[str, object]:
    """The members of `document` that fill a struct's fields (`names`: JSON name -> str or
    int), as `json.Unmarshal` fills them: exact or case-insensitive key match, last repeat
    wins, nulls skipped. Raises `FieldTypeError` for the first member of the wrong type (Go
    decodes on and reports it at the end, so a later syntax error would win: not a case here,
    the document is parsed already)."""
    by_fold = {name.casefold(): name for name in names}
    fields: dict[str, object] = {}
    wrong: FieldTypeError | None = None
    for key, value in document:
        name = key if key in names else by_fold.get(key.casefold())
        if name is None or value is None:
            continue
        if names[name] is int:
            fits = type(value) is int and INT_MIN <= value <= INT_MAX
        else:
            fits = isinstance(value, str)
        if fits:
            fields[name] = fix_surrogates(value) if isinstance(value, str) else value
        elif wrong is None:
            kind = _JSON_KIND.get(type(value), "object")
            wrong = FieldTypeError(name, kind, "int" if names[name] is int else "string")
    if wrong is not None:
        raise wrong
    return fields


def fix_surrogates(value: str) -> str:
    """Go decodes a lone surrogate escape as U+FFFD; Python keeps it, and it cannot be UTF-8."""
    return _SURROGATE.sub("\ufffd", value)


def _refuse(name: str) -> object:
    raise ValueError(f"{name} is not JSON")
