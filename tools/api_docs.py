"""The API documentation block of a prompt: per endpoint its name, method, URL, parameters and response shape.

Shared by the tool sets built from OpenAPI-like specs (TMDB, any OpenAPI 3 spec).
"""

from __future__ import annotations

from collections.abc import Sequence

from codetool_kernel.text import truncate
from tools.schema_shapes import compact_shape
from tools.toolset import ApiSpec


def render_docs(apis: Sequence[ApiSpec]) -> str:
    """The API documentation block: per endpoint its name, method, URL template, parameters, response shape."""
    blocks = []
    for number, api in enumerate(apis, 1):
        lines = [
            f"API {number}: {api.name}",
            f"  What it does: {truncate(' '.join(api.description.split()), 400) or '(no description)'}",
            f"  Method and URL: {api.method} {api.url}",
        ]
        if api.parameters:
            lines.append("  Parameters:")
            for p in api.parameters:
                default = f", default {p.default!r}" if p.default not in (None, "") else ""
                summary = truncate(" ".join(p.description.split()), 200)
                need = "required" if p.required else "optional"
                lines.append(f"    - {p.name} ({p.location}, {p.type}, {need}{default}): {summary}")
        lines.append(f"  Response shape: {compact_shape(api.extra.get('response_schema'))}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
