"""One call to solve one query: config, tool provider and agent built, started and closed for you."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent import AgentConfig, CodeToolAgent, LatentScorer, Trajectory, load_config
from agent.config import update_config
from agent.toolsets import combine, source_providers
from tools import Query, ToolProvider, create_provider

ConfigSource = AgentConfig | str | os.PathLike[str] | None
Source = str | Mapping[str, Any]
Sources = Source | Sequence[Source] | None


def build_config(config: ConfigSource = None, overrides: Mapping[str, Any] | None = None) -> AgentConfig:
    """`config` itself, or loaded from a YAML path (or environment and defaults for None), with `overrides` on top."""
    if isinstance(config, AgentConfig):
        return update_config(config, overrides) if overrides else config
    return load_config(config, overrides)


async def solve_async(
    query: str | Query,
    *,
    tools: str | ToolProvider | None = None,
    tool_options: Mapping[str, Any] | None = None,
    openapi: Sources = None,
    mcp: Sources = None,
    functions: Sequence[Callable[..., Any] | str] | str | None = None,
    config: ConfigSource = None,
    overrides: Mapping[str, Any] | None = None,
    scorer: LatentScorer | None = None,
) -> Trajectory:
    """Solve `query` with the tools given; the `Trajectory`.

    Tools: `tools` is a registered provider's name (options: `tool_options`) or a `ToolProvider`;
    `openapi` OpenAPI 3 specs (paths, URLs or option dicts), `mcp` MCP servers (command lines, URLs or server dicts),
    `functions` Python functions (or `module[:attribute]` names) offered besides it, and the config's
    `tools` section adds its own. With none of these, the TMDB tool set. `config` is an `AgentConfig`, a YAML path, or None (environment and defaults); `overrides` are nested
    like the YAML file, e.g. `{"llm": {"model": "..."}, "search": {"n": 2}}`. `scorer` scores candidates
    in-process instead of the PRM server at `rm.url` (it is used as it is and left open). A failure of the LLM
    endpoint, the PRM or the sandbox raises `QueryFailed`, whose `.trajectory` keeps what was done.
    """
    agent_config = build_config(config, overrides)
    the_query = query if isinstance(query, Query) else Query(query_id="query", text=query)
    provider = tool_provider(agent_config, tools, tool_options, openapi=openapi, mcp=mcp, functions=functions)
    async with provider:
        toolset = provider.toolset_for(the_query)
        async with CodeToolAgent(agent_config, scorer=scorer) as agent:
            return await agent.solve(the_query, toolset)


def solve(
    query: str | Query,
    *,
    tools: str | ToolProvider | None = None,
    tool_options: Mapping[str, Any] | None = None,
    openapi: Sources = None,
    mcp: Sources = None,
    functions: Sequence[Callable[..., Any] | str] | str | None = None,
    config: ConfigSource = None,
    overrides: Mapping[str, Any] | None = None,
    scorer: LatentScorer | None = None,
) -> Trajectory:
    """Blocking twin of `solve_async`, for scripts without an event loop."""
    return asyncio.run(
        solve_async(
            query, tools=tools, tool_options=tool_options, openapi=openapi, mcp=mcp, functions=functions,
            config=config, overrides=overrides, scorer=scorer,
        )  # fmt: skip
    )


def tool_provider(
    config: AgentConfig,
    tools: str | ToolProvider | None = None,
    tool_options: Mapping[str, Any] | None = None,
    *,
    openapi: Sources = None,
    mcp: Sources = None,
    functions: Sequence[Callable[..., Any] | str] | str | None = None,
) -> ToolProvider:
    """One provider (not started) for every tool source given here and in `config.tools`; TMDB when none is."""
    given = [functions] if isinstance(functions, str) else list(functions or ())
    callables = [item for item in given if not isinstance(item, str)]
    sources = config.tools.model_copy(
        update={
            "openapi": (*_listed(openapi), *config.tools.openapi),
            "mcp": (*_listed(mcp), *config.tools.mcp),
            "functions": (*(item for item in given if isinstance(item, str)), *config.tools.functions),
        }
    )
    providers: list[ToolProvider] = []
    if isinstance(tools, ToolProvider):
        providers.append(tools)
    elif tools is not None or not (sources.any or callables):
        providers.append(create_provider(tools or "tmdb", **dict(tool_options or {})))
    providers += source_providers(sources)
    if callables:
        providers.append(create_provider("functions", functions=callables))
    return combine(providers)


def _listed(value: Sources) -> list[Source]:
    return [value] if isinstance(value, (str, Mapping)) else list(value or ())
