"""One call to solve one query: config, tool provider and agent built, started and closed for you."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from agent import AgentConfig, CodeToolAgent, LatentScorer, Trajectory, load_config
from agent.config import update_config
from tools import Query, create_provider

ConfigSource = AgentConfig | str | os.PathLike[str] | None


def build_config(config: ConfigSource = None, overrides: Mapping[str, Any] | None = None) -> AgentConfig:
    """`config` itself, or loaded from a YAML path (or environment and defaults for None), with `overrides` on top."""
    if isinstance(config, AgentConfig):
        return update_config(config, overrides) if overrides else config
    return load_config(config, overrides)


async def solve_async(
    query: str | Query,
    *,
    tools: str = "tmdb",
    tool_options: Mapping[str, Any] | None = None,
    config: ConfigSource = None,
    overrides: Mapping[str, Any] | None = None,
    scorer: LatentScorer | None = None,
) -> Trajectory:
    """Solve `query` with the tool provider registered as `tools` (options: `tool_options`); the `Trajectory`.

    `config` is an `AgentConfig`, a YAML path, or None (environment and defaults); `overrides` are nested
    like the YAML file, e.g. `{"llm": {"model": "..."}, "search": {"n": 2}}`. `scorer` scores candidates
    in-process instead of the PRM server at `rm.url` (it is used as it is and left open). A failure of the LLM
    endpoint, the PRM or the sandbox raises `QueryFailed`, whose `.trajectory` keeps what was done.
    """
    agent_config = build_config(config, overrides)
    the_query = query if isinstance(query, Query) else Query(query_id="query", text=query)
    async with create_provider(tools, **dict(tool_options or {})) as provider:
        toolset = provider.toolset_for(the_query)
        async with CodeToolAgent(agent_config, scorer=scorer) as agent:
            return await agent.solve(the_query, toolset)


def solve(
    query: str | Query,
    *,
    tools: str = "tmdb",
    tool_options: Mapping[str, Any] | None = None,
    config: ConfigSource = None,
    overrides: Mapping[str, Any] | None = None,
    scorer: LatentScorer | None = None,
) -> Trajectory:
    """Blocking twin of `solve_async`, for scripts without an event loop."""
    return asyncio.run(
        solve_async(query, tools=tools, tool_options=tool_options, config=config, overrides=overrides, scorer=scorer)
    )
