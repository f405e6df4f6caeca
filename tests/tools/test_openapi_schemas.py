"""Schema views on what resolved OpenAPI documents hold: cycles, `allOf`, 3.1 type lists."""

from __future__ import annotations

from typing import Any

from tools.schema_shapes import compact_shape, field_names, merge_all_of


def cyclic_folder() -> dict[str, Any]:
    folder: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}}}
    folder["properties"]["parent"] = folder
    folder["properties"]["children"] = {"type": "array", "items": folder}
    alias: dict[str, Any] = {"oneOf": []}
    alias["oneOf"].append(alias)  # a $ref cycle through oneOf alone
    folder["properties"]["alias"] = alias
    return folder


def test_views_of_a_cyclic_schema_end() -> None:
    folder = cyclic_folder()
    assert compact_shape(folder) == "{name: string, parent: {...}, children: [{...}], alias: {...}}"
    assert field_names(folder) == ["name", "parent", "children", "alias"]


def test_all_of_parts_are_merged() -> None:
    pet = {
        "allOf": [
            {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
            {"required": ["id"], "properties": {"id": {"type": "integer"}}},
        ]
    }
    assert merge_all_of(pet) == {
        "type": "object",
        "properties": {"name": {"type": "string"}, "id": {"type": "integer"}},
        "required": ["name", "id"],
    }
    assert compact_shape({"type": "array", "items": pet}) == "[{name: string, id: integer}]"
    assert field_names(pet) == ["name", "id"]


def test_a_type_list_shows_every_type() -> None:
    assert compact_shape({"type": "object", "properties": {"note": {"type": ["string", "null"]}}}) == "{note: string|null}"
