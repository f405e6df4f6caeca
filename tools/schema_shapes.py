"""Small views of OpenAPI response schemas: a compact shape for prompts, field names for
retrieval, and deterministic sample values for the virtual TMDB server."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

_MAX_DEPTH = 4
_MAX_FIELDS = 16


def compact_shape(schema: Any, depth: int = 0) -> str:
    """A one-line shape such as `{page: integer, results: [{id: integer, name: string}]}`."""
    if not isinstance(schema, Mapping):
        return "any"
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        return compact_shape(alternatives[0], depth)
    kind = schema.get("type")
    if kind == "array" or "items" in schema:
        return f"[{compact_shape(schema.get('items'), depth + 1)}]"
    properties = schema.get("properties")
    if kind == "object" or isinstance(properties, Mapping):
        if not properties:
            return "object"
        if depth >= _MAX_DEPTH:
            return "{...}"
        fields = [
            f"{name}: {compact_shape(value, depth + 1)}" for name, value in list(properties.items())[:_MAX_FIELDS]
        ]
        if len(properties) > _MAX_FIELDS:
            fields.append("...")
        return "{" + ", ".join(fields) + "}"
    return str(kind or "any")


def field_names(schema: Any) -> list[str]:
    """Every property name in the schema, outer ones first, without repeats."""
    names: list[str] = []
    pending = [schema]
    while pending:
        node = pending.pop(0)
        if not isinstance(node, Mapping):
            continue
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            names += [name for name in properties if name not in names]
            pending += list(properties.values())
        pending += [node.get("items"), *(node.get("oneOf") or ()), *(node.get("anyOf") or ())]
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
