"""The slice of MongoDB's query and projection language that GenieACS's NBI passes through.

A ``/devices`` query first goes through GenieACS's ``query.expand`` (lib/query.ts), ported in
:func:`expand`: a condition on a parameter path (``{"A.B": v}``) becomes one on its stored value
(``{"A.B._value": v}``), while a path whose last segment starts with ``_`` (``_deviceId._Serial
Number``, ``_tags``) stays as it is; a string value also stands for the regex, number or wildcard
pattern it spells. :func:`matches` then evaluates plain MongoDB semantics: strings compare exactly
(case-sensitively: GenieACS sets no collation), equality on an array (``_tags``) means "contains",
and ``$and``/``$or``/``$nor`` combine conditions.
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any


class BadQuery(ValueError):
    """Raised for an operator we do not model, or a query GenieACS itself rejects."""


# lib/query.ts EXPAND_OPS: the operators whose operands are normalized like bare values
_EXPAND_OPS = frozenset({"$eq", "$gt", "$gte", "$in", "$lt", "$lte", "$ne", "$nin"})
# JavaScript's `+input === parseFloat(input)` holds for decimal literals (and "Infinity")
_JS_NUMBER = re.compile(r"^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$")
_REGEX_LITERAL = re.compile(r"^/(.*?)/(g?i?m?y?)\Z", re.DOTALL)


def _wildcard(value: str) -> re.Pattern[str] | None:
    """lib/query.ts stringToRegexp, quirks included: only the first special character is
    escaped and only the first inner ``*`` becomes ``.*`` (``String.replace`` without ``g``)."""
    if "*" not in value:
        return None
    output = re.sub(r"[\[\]\\^$.|?+()]", lambda m: "\\" + m[0], value, count=1)
    output = output.lstrip("*") if output.startswith("*") else "^" + output
    output = output.rstrip("*") if output.endswith("*") else output + "$"
    return re.compile(output.replace("*", ".*", 1))


def normalize(value: Any) -> list[Any]:
    """lib/query.ts normalize: the values a bare value stands for.

    GenieACS also adds a Date when the string parses as one after 1983; this simulator stores
    timestamps as ISO strings, which the string itself already matches, so that is left out.
    """
    if not isinstance(value, str):
        return [value]
    values: list[Any] = [value]
    if m := _REGEX_LITERAL.match(value):
        flags = (re.IGNORECASE if "i" in m[2] else 0) | (re.MULTILINE if "m" in m[2] else 0)
        values.append({"$regex": re.compile(m[1], flags)})
    if _JS_NUMBER.match(value) or value.strip() in ("Infinity", "+Infinity", "-Infinity"):
        values.append(float(value.strip().replace("Infinity", "inf")))
    if (pattern := _wildcard(value)) is not None:
        values.append({"$regex": pattern})
    return values


def _expand_value(value: Any) -> list[Any]:
    """lib/query.ts expandValue: the alternatives a condition's value stands for."""
    if isinstance(value, list):
        return [[v for item in value for v in _expand_value(item)]]
    if not isinstance(value, dict):
        return normalize(value)
    keys = list(value)
    choices = [_expand_value(value[k]) if k in _EXPAND_OPS else [value[k]] for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def expand(query: dict[str, Any]) -> dict[str, Any]:
    """lib/query.ts expand, applied by the NBI to ``/devices`` queries only."""
    expanded: dict[str, Any] = {}
    for key, value in query.items():
        if key.startswith("$"):
            if not isinstance(value, list):
                raise BadQuery(f"{key} needs an array")
            expanded[key] = [expand(part) for part in value]
            continue
        path = key if key.rsplit(".", 1)[-1].startswith("_") else f"{key}._value"
        conditions = [{path: v} for v in _expand_value(value)]
        if len(conditions) == 1:
            expanded.update(conditions[0])
        elif isinstance(value, dict) and ("$ne" in value or "$not" in value):
            if len(value) > 1:
                raise BadQuery("Cannot mix $ne or $not with other operators")
            expanded.setdefault("$and", []).extend(conditions)
        else:
            expanded.setdefault("$and", []).append({"$or": conditions})
    return expanded


def _values_at(doc: dict[str, Any], path: str) -> list[Any]:
    node: Any = doc
    for segment in path.split("."):
        if not isinstance(node, dict) or segment not in node:
            return []
        node = node[segment]
    return [*node, node] if isinstance(node, list) else [node]


def _equal(a: Any, b: Any) -> bool:
    # MongoDB compares by BSON type: a string never equals a number, a boolean never equals 1
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _contains(values: list[Any], operand: Any) -> bool:
    return any(_equal(v, operand) for v in values)


def _regex(operand: Any, options: str) -> re.Pattern[str]:
    if isinstance(operand, re.Pattern):
        return operand
    flags = (re.IGNORECASE if "i" in options else 0) | (re.MULTILINE if "m" in options else 0)
    try:
        return re.compile(str(operand), flags)
    except re.error as exc:
        raise BadQuery(f"bad $regex: {exc}") from exc


def _satisfies(values: list[Any], condition: Any) -> bool:
    if not (
        isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)
    ):
        return _contains(values, condition)
    for op, operand in condition.items():
        if op == "$eq":
            ok = _contains(values, operand)
        elif op == "$ne":
            ok = not _contains(values, operand)
        elif op == "$in":
            ok = any(_contains(values, o) for o in operand)
        elif op == "$nin":
            ok = not any(_contains(values, o) for o in operand)
        elif op == "$exists":
            ok = bool(values) == bool(operand)
        elif op == "$regex":
            pattern = _regex(operand, str(condition.get("$options", "")))
            ok = any(isinstance(v, str) and pattern.search(v) for v in values)
        elif op == "$options":
            ok = True  # read with $regex
        else:
            raise BadQuery(f"unsupported operator {op}")
        if not ok:
            return False
    return True


def matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    for key, condition in query.items():
        if key == "$and":
            ok = all(matches(doc, q) for q in condition)
        elif key == "$or":
            ok = any(matches(doc, q) for q in condition)
        elif key == "$nor":
            ok = not any(matches(doc, q) for q in condition)
        elif key.startswith("$"):
            raise BadQuery(f"unsupported operator {key}")
        else:
            ok = _satisfies(_values_at(doc, key), condition)
        if not ok:
            return False
    return True


def project(doc: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"_id": doc["_id"]}
    for path in fields:
        values = doc
        found = True
        for segment in path.split("."):
            if isinstance(values, dict) and segment in values:
                values = values[segment]
            else:
                found = False
                break
        if not found:
            continue
        node = out
        *parents, leaf = path.split(".")
        for segment in parents:
            node = node.setdefault(segment, {})
        node[leaf] = copy.deepcopy(values)
    return out
