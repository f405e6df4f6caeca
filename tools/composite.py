"""Several tool sources offered to one query as one tool set.

`CompositeProvider([tmdb, openapi, mcp])` starts and stops every source and merges their tool sets:
the docs get one section per source, routes and secrets are united (two sources may not claim one
URL prefix), and a sandbox global that two sources both preset with different values is renamed
for the later source (`headers` -> `petstore_headers`), with a usage note that says so. The first
source is the primary one: it reads benchmark query files and gets a query's API list; the others
pick their tools for the query text (retrieval) or offer all of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

from codetool_kernel.errors import ConfigError
from tools.toolset import ApiSpec, Query, Route, ToolProvider, ToolSet


class CompositeProvider(ToolProvider):
    """The union of `providers` (at least one; the first is primary)."""

    def __init__(self, providers: Sequence[ToolProvider]) -> None:
        if not providers:
            raise ConfigError("no tool source given")
        self.providers = tuple(providers)
        self.name = "+".join(_source_name(provider, index) for index, provider in enumerate(self.providers))
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        if self._stack is not None:
            return
        async with AsyncExitStack() as stack:
            for provider in self.providers:
                await stack.enter_async_context(provider)
            self._stack = stack.pop_all()

    async def aclose(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    def load_queries(self, path: str, ids: Sequence[str] | None = None) -> list[Query]:
        return self.providers[0].load_queries(path, ids)

    def toolset_for(self, query: Query) -> ToolSet:
        free_form = query.model_copy(update={"api_list": None})
        parts = [self.providers[0].toolset_for(query)]
        parts += [provider.toolset_for(free_form) for provider in self.providers[1:]]
        return merge_toolsets(parts)


def merge_toolsets(parts: Sequence[ToolSet]) -> ToolSet:
    """One tool set offering everything in `parts` (see the module docstring for the rules)."""
    if len(parts) == 1:
        return parts[0]
    names = _distinct_names([part.name for part in parts])
    apis: list[ApiSpec] = []
    routes: list[Route] = []
    preset: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    docs: list[str] = []
    notes: list[str] = []
    taken_api_names: set[str] = set()
    for name, part in zip(names, parts, strict=True):
        for route in part.routes:
            _check_prefix(route, routes, name)
        routes.extend(part.routes)
        apis.extend(_renamed_apis(part.apis, name, taken_api_names))
        renamed = _merge_preset(preset, part.preset, name)
        for mask, value in part.secrets.items():
            if secrets.get(mask, value) != value:
                raise ConfigError(f"tool source {name} reuses a secret mask of another source with another value")
            secrets[mask] = value
        docs.append(f"## Tool source: {name}\n\n{part.docs.strip()}")
        note = part.usage_notes.strip()
        if renamed:
            note += "".join(f" For these APIs use `{new}` wherever this note says `{old}`." for old, new in renamed)
        if note:
            notes.append(f"- {name}: {note.strip()}")
    return ToolSet(
        name="+".join(names),
        apis=tuple(apis),
        routes=tuple(routes),
        preset=preset,
        secrets=secrets,
        docs="\n\n".join(docs),
        usage_notes="\n".join(notes),
    )


def _source_name(provider: ToolProvider, index: int) -> str:
    return str(getattr(provider, "name", "") or f"source{index + 1}")


def _distinct_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    distinct = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        distinct.append(name if seen[name] == 1 else f"{name}{seen[name]}")
    return distinct


def _check_prefix(route: Route, taken: Sequence[Route], source: str) -> None:
    mine = route.prefix.rstrip("/").casefold()
    for other in taken:
        theirs = other.prefix.rstrip("/").casefold()
        if mine == theirs or mine.startswith(theirs + "/") or theirs.startswith(mine + "/"):
            raise ConfigError(f"tool source {source} serves {route.prefix}, which another source already serves")


def _renamed_apis(apis: Sequence[ApiSpec], source: str, taken: set[str]) -> list[ApiSpec]:
    kept = []
    for api in apis:
        name = api.name if api.name not in taken else f"{_identifier(source)}_{api.name}"
        taken.add(name)
        kept.append(api if name == api.name else api.model_copy(update={"name": name}))
    return kept


def _merge_preset(into: dict[str, Any], preset: Mapping[str, Any], source: str) -> list[tuple[str, str]]:
    """Add `preset` to `into`; the (old, new) names of globals renamed because another source holds them."""
    renamed = []
    for key, value in preset.items():
        if key not in into or into[key] == value:
            into[key] = value
            continue
        new = f"{_identifier(source)}_{key}"
        if new in into:
            raise ConfigError(f"tool source {source}: the sandbox global {new} is taken twice")
        into[new] = value
        renamed.append((key, new))
    return renamed


def _identifier(text: str) -> str:
    cleaned = re.sub(r"\W+", "_", text).strip("_").lower()
    return cleaned if cleaned and not cleaned[0].isdigit() else f"t_{cleaned}"
