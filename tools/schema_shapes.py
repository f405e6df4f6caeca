"""Small views of OpenAPI response schemas: a compact shape for prompts, field names for
retrieval, and deterministic sample values for the virtual TMDB server."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 4
_MAX_FIELDS = 16


def compact_shape(schema: Any, depth: int = 0) -> str:
    """A one-line shape such as `{page: integer, results: [{id: integer, name: string}]}`.

    A recursive schema (a `$ref` cycle, resolved into a cyclic object graph) shows as `{...}` where it recurs.
    """
    return _shape(schema, depth, frozenset())


def _shape(schema: Any, depth: int, ancestors: frozenset[int]) -> str:
    if not isinstance(schema, Mapping):
        return "any"
    if id(schema) in ancestors:
        return "{...}"
    ancestors |= {id(schema)}
    if schema.get("allOf"):
        schema = merge_all_of(schema)
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        return _shape(alternatives[0], depth, ancestors)
    kind = schema.get("type")
    if kind == "array" or "items" in schema:
        return f"[{_shape(schema.get('items'), depth + 1, ancestors)}]"
    properties = schema.get("properties")
    if kind == "object" or isinstance(properties, Mapping):
        if not properties:
            return "object"
        if depth >= _MAX_DEPTH:
            return "{...}"
        fields = [
            f"{name}: {_shape(value, depth + 1, ancestors)}" for name, value in list(properties.items())[:_MAX_FIELDS]
        ]
        if len(properties) > _MAX_FIELDS:
            fields.append("...")
        return "{" + ", ".join(fields) + "}"
    if isinstance(kind, list):  # OpenAPI 3.1: `type: [string, "null"]`
        return "|".join(map(str, kind))
    return str(kind or "any")


def merge_all_of(schema: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """`schema` with its `allOf` parts folded in: properties and required names united, the first type kept."""
    merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
    properties: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[Any] = list(merged.get("required") or ())
    for part in schema.get("allOf") or ():
        if not isinstance(part, Mapping):
            continue
        if part.get("allOf") and depth < _MAX_DEPTH:
            part = merge_all_of(part, depth + 1)
        properties.update(part.get("properties") or {})
        required += [name for name in part.get("required") or () if name not in required]
        for key in ("type", "items", "oneOf", "anyOf", "description"):
            if key in part and key not in merged:
                merged[key] = part[key]
    if properties:
        merged["properties"] = properties
        merged.setdefault("type", "object")
    if required:
        merged["required"] = required
    return merged


def field_names(schema: Any) -> list[str]:
    """Every property name in the schema, outer ones first, without repeats."""
    names: list[str] = []
    pending = [schema]
    seen: set[int] = set()
    while pending:
        node = pending.pop(0)
        if not isinstance(node, Mapping) or id(node) in seen:
            continue
        seen.add(id(node))
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            names += [name for name in properties if name not in names]
            pending += list(properties.values())
        pending += [node.get("items"), *(node.get("oneOf") or ()), *(node.get("anyOf") or ()), *(node.get("allOf") or ())]
    return names


def sample_value(schema: Any, rng: random.Random, name: str = "", depth: int = 0) -> Any:
    """A value that fits `schema`, drawn from `rng` (same seed, same value)."""
    if not isinstance(schema, Mapping) or depth > 8:
        return None
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        return sample_value(alternatives[0], rng, name, depth)
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "array" or "items" in schema:
        return [sample_value(schema.get("items"), rng, name, depth + 1) for _ in range(2)]
    if kind == "object" or "properties" in schema:
        return {
            key: sample_value(value, rng, key, depth + 1) for key, value in (schema.get("properties") or {}).items()
        }
    if kind == "integer":
        return rng.randint(1, 100_000)
    if kind == "number":
        return round(rng.uniform(0, 10), 3)
    if kind == "boolean":
        return False
    if name.endswith("_path"):
        return f"/{rng.randrange(16**12):012x}.jpg"
    if name.endswith("date"):
        return f"{rng.randint(1970, 2023)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return f"{name.replace('_', ' ') or 'text'} {rng.randint(1, 999)}"
