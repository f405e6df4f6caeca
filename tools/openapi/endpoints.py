"""The operations of an OpenAPI document as `ApiSpec`s: parameters, request body fields, response shape.

Path, query and header parameters keep their location; the fields of a JSON object request body
become `body` parameters, those of a form body `form` parameters (any other body is one `body`
parameter). Cookie parameters are left out: the gateway never forwards cookies. Schemas are copied
without cycles and depth-capped, so a recursive schema shows as an `object` where it recurs.
Per-operation `servers` and `security` are not read: every endpoint lies under the spec's servers
and every call carries all the schemes' credentials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from codetool_kernel.errors import DataError
from tools.schema_shapes import compact_shape, field_names, merge_all_of
from tools.toolset import ApiParameter, ApiSpec

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAMETER_PLACES = ("path", "query", "header")
_MAX_SCHEMA_DEPTH = 10
_MAX_SCHEMA_NODES = 4000
_MAX_ENUM_SHOWN = 12
_NON_WORD = re.compile(r"[^A-Za-z0-9]+")


def read_endpoints(document: Mapping[str, Any], base_url: str, source: str) -> list[ApiSpec]:
    """Every operation of `document` (in spec order) as an `ApiSpec` whose URL is `base_url` + its path."""
    apis: list[ApiSpec] = []
    taken: set[str] = set()
    for path, item in document["paths"].items():
        if not isinstance(item, Mapping):
            raise DataError(f"{source}: path {path!r} is not a mapping")
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            where = f"{source}: {method.upper()} {path}"
            if not isinstance(operation, Mapping):
                raise DataError(f"{where}: the operation is not a mapping")
            try:
                api = _endpoint(str(path), method, operation, item.get("parameters") or (), base_url)
            except (TypeError, AttributeError, KeyError, ValueError) as exc:
                raise DataError(f"{where}: malformed ({type(exc).__name__}: {exc})") from None
            name, suffix = api.name, 2
            while name in taken:
                name, suffix = f"{api.name}_{suffix}", suffix + 1
            taken.add(name)
            apis.append(api.model_copy(update={"name": name}))
    return apis


def _endpoint(path: str, method: str, operation: Mapping[str, Any], shared: Any, base_url: str) -> ApiSpec:
    name = operation.get("operationId") or f"{method.upper()}_{_NON_WORD.sub('_', path).strip('_') or 'root'}"
    schema = _response_schema(operation.get("responses") or {})
    tags = [str(tag) for tag in operation.get("tags") or ()]
    return ApiSpec(
        name=str(name),
        method=method.upper(),
        url=base_url.rstrip("/") + "/" + path.lstrip("/"),
        description=_description(operation),
        parameters=(*_parameters(shared, operation.get("parameters") or ()), *_body_parameters(operation)),
        extra={"response_schema": schema, "search_terms": " ".join([*tags, *field_names(schema)])},
    )


def _description(operation: Mapping[str, Any]) -> str:
    summary = " ".join(str(operation.get("summary") or "").split())
    details = " ".join(str(operation.get("description") or "").split())
    if summary and details and not details.startswith(summary):
        return f"{summary.rstrip('.')}. {details}"
    return details or summary


def _parameters(shared: Any, own: Any) -> list[ApiParameter]:
    by_key: dict[tuple[str, str], Mapping[str, Any]] = {}
    for raw in [*shared, *own]:  # an operation's parameter overrides the path's of the same name and place
        by_key[(str(raw["name"]), str(raw.get("in")))] = raw
    parameters = []
    for (name, place), raw in by_key.items():
        if place not in _PARAMETER_PLACES:
            continue
        schema = raw.get("schema")
        if schema is None:  # `content` instead of `schema`: one media type, its schema
            schema = next(iter((raw.get("content") or {}).values()), {}).get("schema")
        schema = schema if isinstance(schema, Mapping) else {}
        parameters.append(
            ApiParameter(
                name=name,
                type=_type_text(schema),
                description=str(raw.get("description") or schema.get("description") or ""),
                required=bool(raw.get("required")) or place == "path",
                default=schema.get("default"),
                location=place,
            )
        )
    return parameters


def _body_parameters(operation: Mapping[str, Any]) -> list[ApiParameter]:
    """A JSON body's fields as `body` parameters, a form body's as `form` parameters, any other body as one `body`."""
    body = operation.get("requestBody")
    if not isinstance(body, Mapping):
        return []
    content = body.get("content") or {}
    required = bool(body.get("required"))
    media = next((m for m in content if _is_json(m)), None) or next((m for m in content if _is_form(m)), None)
    if media is None:
        kinds = ", ".join(map(str, content)) or "unspecified"
        return [ApiParameter(name="body", type=kinds, description=f"request body ({kinds})", required=required)]
    schema = (content[media] or {}).get("schema")
    if isinstance(schema, Mapping) and schema.get("allOf"):
        schema = merge_all_of(schema)
    if not _has_properties(schema):
        description = str(body.get("description") or f"the whole body ({media})")
        return [ApiParameter(name="body", type=compact_shape(_acyclic(schema)), description=description, required=required)]
    location = "body" if _is_json(media) else "form"
    needed = set(schema.get("required") or ())
    return [
        ApiParameter(
            name=str(name),
            type=_type_text(field),
            description=str(field.get("description") or "") if isinstance(field, Mapping) else "",
            required=name in needed,
            default=field.get("default") if isinstance(field, Mapping) else None,
            location=location,
        )
        for name, field in schema["properties"].items()
    ]


def _response_schema(responses: Mapping[str, Any]) -> Any:
    codes = sorted(code for code in responses if str(code).startswith("2")) or [c for c in responses if c == "default"]
    for code in codes:
        content = (responses[code] or {}).get("content") or {}
        media = next((m for m in content if _is_json(m)), None)
        if media is not None:
            return _acyclic((content[media] or {}).get("schema"))
    return None


def _type_text(schema: Any, depth: int = 0) -> str:
    """A parameter's type for the docs: `integer`, `array of string`, `string, one of 'a', 'b'`, or a shape."""
    if not isinstance(schema, Mapping):
        return "string"
    if depth > 3:
        return "object"
    if schema.get("allOf"):
        schema = merge_all_of(schema)
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        return " or ".join(dict.fromkeys(_type_text(alternative, depth + 1) for alternative in alternatives[:3]))
    kind = schema.get("type")
    if isinstance(kind, list):  # OpenAPI 3.1: `type: [integer, "null"]`
        kind = "|".join(map(str, kind))
    if kind == "array":
        items = schema.get("items")
        item_text = _type_text(items, depth + 1) if not _has_properties(items) else compact_shape(_acyclic(items))
        text = f"array of {item_text}"
    elif kind == "object" or _has_properties(schema):
        text = compact_shape(_acyclic(schema))
    else:
        text = str(kind or "string")
    if schema.get("format"):
        text += f" ({schema['format']})"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        shown = ", ".join(repr(value) for value in enum[:_MAX_ENUM_SHOWN])
        text += f", one of {shown}" + (", ..." if len(enum) > _MAX_ENUM_SHOWN else "")
    return text


def _acyclic(schema: Any) -> Any:
    """A copy of `schema` without cycles, at most `_MAX_SCHEMA_DEPTH` deep and `_MAX_SCHEMA_NODES` big.

    A node that recurs inside itself, or lies past the caps, becomes `{"type": "object"}`.
    """
    budget = [_MAX_SCHEMA_NODES]

    def copy(node: Any, ancestors: frozenset[int], depth: int) -> Any:
        if not isinstance(node, (Mapping, list)):
            return node
        if id(node) in ancestors or depth > _MAX_SCHEMA_DEPTH or budget[0] <= 0:
            return {"type": "object"}
        budget[0] -= 1
        inner = ancestors | {id(node)}
        if isinstance(node, list):
            return [copy(item, inner, depth + 1) for item in node]
        return {str(key): copy(value, inner, depth + 1) for key, value in node.items()}

    return copy(schema, frozenset(), 0)


def _has_properties(schema: Any) -> bool:
    return isinstance(schema, Mapping) and isinstance(schema.get("properties"), Mapping) and bool(schema["properties"])


def _is_json(media_type: str) -> bool:
    kind = _bare(media_type)
    return kind == "application/json" or kind.endswith("+json")


def _is_form(media_type: str) -> bool:
    return _bare(media_type) in ("application/x-www-form-urlencoded", "multipart/form-data")


def _bare(media_type: str) -> str:
    return str(media_type).split(";")[0].strip().lower()
