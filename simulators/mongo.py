"""The slice of MongoDB's query and projection language that GenieACS's NBI passes through.

GenieACS expands a condition on a parameter path (``{"A.B": v}``) to its value
(``{"A.B._value": v}``); equality on an array (``_tags``) means "contains".
"""

from __future__ import annotations

import copy
import re
from typing import Any


class BadQuery(ValueError):
    """Raised for an operator we do not model."""


def _values_at(doc: dict[str, Any], path: str) -> list[Any]:
    node: Any = doc
    for segment in path.split("."):
        if not isinstance(node, dict) or segment not in node:
            return []
        node = node[segment]
    # GenieACS expands {"A.B": v} on a parameter to {"A.B._value": v}
    if isinstance(node, dict) and "_value" in node and not path.split(".")[-1].startswith("_"):
        node = node["_value"]
    return [*node, node] if isinstance(node, list) else [node]


def _satisfies(values: list[Any], condition: Any) -> bool:
    if not (
        isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)
    ):
        return condition in values
    for op, operand in condition.items():
        if op == "$eq":
            ok = operand in values
        elif op == "$ne":
            ok = operand not in values
        elif op == "$in":
            ok = any(v in operand for v in values)
        elif op == "$nin":
            ok = not any(v in operand for v in values)
        elif op == "$exists":
            ok = bool(values) == bool(operand)
        elif op == "$regex":
            ok = any(isinstance(v, str) and re.search(operand, v) for v in values)
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
