"""CouchDB-style JSON queries over state values: the selector subset Fabric contracts use. Pure.

Supported: `selector` with implicit equality, `$eq $ne $gt $gte $lt $lte $in $nin $exists`,
`$and $or`, dotted field paths or nested objects (`{"a": {"b": 1}}` is `{"a.b": 1}`); `sort` (field names or `{field: asc|desc}`); `limit`. `fields`
and `use_index` are accepted and ignored. Values compare by CouchDB's collation of types:
null < false < true < numbers < strings < arrays < objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medalliance.errors import QuerySyntaxError

_COMPARE = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Condition:
    path: tuple[str, ...]
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Combination:
    op: str  # "$and" | "$or"
    parts: tuple[Condition | Combination, ...]


Selector = Condition | Combination


@dataclass(frozen=True, slots=True)
class Query:
    selector: Selector
    sort: tuple[tuple[tuple[str, ...], bool], ...]  # (path, descending)
    limit: int

    def matches(self, document: Any) -> bool:
        return _matches(self.selector, document)

    def sort_key(self, document: Any) -> tuple[Any, ...]:
        return tuple(_collate(_get(document, path)) for path, _ in self.sort)


def parse_query(query: Mapping[str, Any] | str) -> Query:
    """Parse a rich query; raises `QuerySyntaxError` naming the unsupported part."""
    if isinstance(query, str):
        try:
            query = json.loads(query)
        except ValueError as exc:
            raise QuerySyntaxError(f"query is not JSON: {exc}") from exc
    if not isinstance(query, Mapping):
        raise QuerySyntaxError("query must be a JSON object with a selector")
    unknown = set(query) - {"selector", "sort", "limit", "skip", "fields", "use_index", "bookmark"}
    if unknown:
        raise QuerySyntaxError(f"unknown query keys: {', '.join(sorted(unknown))}")
    selector = query.get("selector", {})
    if not isinstance(selector, Mapping):
        raise QuerySyntaxError("selector must be a JSON object")
    limit = query.get("limit", 0)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise QuerySyntaxError("limit must be a non-negative integer")
    return Query(_parse_object(selector, ()), _parse_sort(query.get("sort", [])), limit)


def _parse_object(obj: Mapping[str, Any], path: tuple[str, ...]) -> Selector:
    parts: list[Selector] = []
    for key, value in obj.items():
        if not isinstance(key, str):
            raise QuerySyntaxError("selector keys must be strings")
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise QuerySyntaxError(f"{key} needs a non-empty list of selectors")
            subs = []
            for sub in value:
                if not isinstance(sub, Mapping):
                    raise QuerySyntaxError(f"{key} items must be selector objects")
                subs.append(_parse_object(sub, path))
            parts.append(Combination(key, tuple(subs)))
        elif key.startswith("$"):
            parts.append(_parse_operator(key, value, path))
        else:
            sub_path = path + tuple(key.split("."))
            if isinstance(value, Mapping) and value:
                # CouchDB reads a non-empty object as operators on the field or as conditions on
                # its subfields ({"a": {"b": 1}} is {"a.b": 1}), never as a whole-object match;
                # use {"a": {"$eq": {...}}} for that.
                parts.append(_parse_object(value, sub_path))
            else:
                parts.append(Condition(sub_path, "$eq", value))
    return parts[0] if len(parts) == 1 else Combination("$and", tuple(parts))


def _parse_operator(op: str, value: Any, path: tuple[str, ...]) -> Condition:
    where = ".".join(path) or "the top level"
    if op in _COMPARE:
        return Condition(path, op, value)
    if op in ("$in", "$nin"):
        if not isinstance(value, list):
            raise QuerySyntaxError(f"{op} at '{where}' needs a list")
        return Condition(path, op, value)
    if op == "$exists":
        if not isinstance(value, bool):
            raise QuerySyntaxError(f"$exists at '{where}' needs true or false")
        return Condition(path, op, value)
    raise QuerySyntaxError(f"unknown operator {op} in selector at '{where}'")


def _parse_sort(sort: Any) -> tuple[tuple[tuple[str, ...], bool], ...]:
    if not isinstance(sort, list):
        raise QuerySyntaxError("sort must be a list")
    out = []
    for item in sort:
        if isinstance(item, str):
            out.append((tuple(item.split(".")), False))
        elif isinstance(item, Mapping) and len(item) == 1:
            ((field, direction),) = item.items()
            if direction not in ("asc", "desc") or not isinstance(field, str):
                raise QuerySyntaxError("sort direction must be asc or desc")
            out.append((tuple(field.split(".")), direction == "desc"))
        else:
            raise QuerySyntaxError("sort items are field names or {field: asc|desc}")
    return tuple(out)


def _get(document: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(document, Mapping) or part not in document:
            return _MISSING
        document = document[part]
    return document


def _collate(value: Any) -> tuple[int, Any]:
    if value is _MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, list):
        return (4, tuple(_collate(v) for v in value))
    return (5, json.dumps(value, sort_keys=True))


def _matches(selector: Selector, document: Any) -> bool:
    if isinstance(selector, Combination):
        results = (_matches(p, document) for p in selector.parts)
        return all(results) if selector.op == "$and" else any(results)
    value = _get(document, selector.path)
    op = selector.op
    if op == "$exists":
        return (value is not _MISSING) is bool(selector.value)
    if value is _MISSING:
        return op in ("$ne", "$nin")
    if op == "$in":
        return any(_collate(value) == _collate(v) for v in selector.value)
    if op == "$nin":
        return all(_collate(value) != _collate(v) for v in selector.value)
    a, b = _collate(value), _collate(selector.value)
    if op == "$eq":
        return a == b
    if op == "$ne":
        return a != b
    if a[0] != b[0]:
        return False  # ranges compare within one type, as CouchDB indexes do
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]
