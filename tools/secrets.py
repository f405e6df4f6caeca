"""Where each tool set's secrets go, and attaching them there (and nowhere else) on the way out.

Generated code only ever sees masks (`MASKED_TMDB_TOKEN`). A tool set declares, per route, the
places a secret belongs with `SecretSlot`s; the gateway writes the real value into exactly those
places, and only when the code put the secret's mask there. A mask anywhere else (URL, query,
another header, another body field) travels as the literal mask, so no upstream can be made to
echo a real secret by asking for it in a parameter.

    TMDB:            SecretSlot(mask=..., place="header", name="Authorization", template="Bearer {secret}")
    StableToolBench: SecretSlot(mask=..., place="body_field", name="toolbench_key")
    OpenAPI apiKey:  SecretSlot(mask=..., place="query", name="api_key")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, ConfigDict, field_validator


class SecretSlot(BaseModel):
    """One place a secret is attached: a request header, a query parameter (`params=`), or a
    top-level field of the request body.

    `body_field` covers a JSON body (`json=`), a dict or JSON-object string sent as `data=`, and
    a form-encoded `data=` string. The slot is filled only when the code's value there contains
    `mask`; it is then replaced as a whole by `template` with the secret put in.
    """

    model_config = ConfigDict(frozen=True)

    mask: str
    place: Literal["header", "query", "body_field"]
    name: str
    template: str = "{secret}"

    @field_validator("template")
    @classmethod
    def _template_has_one_secret(cls, template: str) -> str:
        if template.count("{secret}") != 1:
            raise ValueError("template must hold `{secret}` exactly once")
        return template

    def render(self, secret: str) -> str:
        """The value this slot carries upstream."""
        return self.template.replace("{secret}", secret)


def attach_to_headers(
    headers: Iterable[tuple[str, str]], slots: Iterable[SecretSlot], secrets: Mapping[str, str]
) -> list[tuple[str, str]]:
    """`headers` with every declared header that carries its mask set to the real value."""
    wanted = {slot.name.lower(): slot for slot in slots if slot.place == "header" and secrets.get(slot.mask)}
    attached = []
    for key, value in headers:
        slot = wanted.get(key.lower())
        attached.append((key, slot.render(secrets[slot.mask]) if slot and slot.mask in value else value))
    return attached


def attach_to_query(
    params: Iterable[tuple[str, str]], slots: Iterable[SecretSlot], secrets: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Query pairs with every declared parameter that carries its mask set to the real value."""
    wanted = {slot.name: slot for slot in slots if slot.place == "query" and secrets.get(slot.mask)}
    attached = []
    for key, value in params:
        slot = wanted.get(key)
        attached.append((key, slot.render(secrets[slot.mask]) if slot and slot.mask in value else value))
    return attached


def attach_to_body(body: Any, slots: Iterable[SecretSlot], secrets: Mapping[str, str]) -> Any:
    """`body` (a `json=` or `data=` value) with its declared fields that carry their mask filled in."""
    fields = {slot.name: slot for slot in slots if slot.place == "body_field" and secrets.get(slot.mask)}
    if not fields or body is None:
        return body
    if isinstance(body, Mapping):
        return _fill_mapping(body, fields, secrets)
    if not isinstance(body, str):
        return body
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        filled = _fill_mapping(parsed, fields, secrets)
        return body if filled == parsed else json.dumps(filled, ensure_ascii=False)
    pairs = parse_qsl(body, keep_blank_values=True)
    if not pairs or not any(key in fields for key, _ in pairs):
        return body
    return urlencode([(key, _fill(fields.get(key), value, secrets)) for key, value in pairs])


def _fill_mapping(body: Mapping[Any, Any], fields: Mapping[str, SecretSlot], secrets: Mapping[str, str]) -> dict:
    return {key: _fill(fields.get(key) if isinstance(key, str) else None, value, secrets) for key, value in body.items()}


def _fill(slot: SecretSlot | None, value: Any, secrets: Mapping[str, str]) -> Any:
    if slot is None or not isinstance(value, str) or slot.mask not in value:
        return value
    return slot.render(secrets[slot.mask])
