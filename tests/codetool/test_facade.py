"""The public façade, used the way the README shows: `import codetool` and one call per query."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import codetool
import codetool_kernel.errors
from codetool import CodeToolAgent, ConfigError, Query, create_provider, load_config, run, solve
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import coppola_policy

QUESTION = "How many movies did Sofia Coppola direct?"


def _overrides(base_url: str) -> dict[str, Any]:
    return {
        "llm": {"base_url": base_url, "api_key": "test", "model": "stub-model", "max_retries": 0},
        "search": {"n": 1},
        "sandbox": {"backend": "restricted", "limits": {"timeout_s": 20}},
    }


def test_the_facade_names_the_public_api() -> None:
    assert codetool.errors.ConfigError is codetool_kernel.errors.ConfigError is ConfigError
    assert issubclass(codetool.QueryFailed, codetool.CodeToolError)
    assert run is codetool.run and CodeToolAgent is codetool.CodeToolAgent and solve is codetool.solve
    assert all(hasattr(codetool, name) for name in codetool.__all__)


async def test_one_call_solves_a_query_with_the_shipped_tmdb_spec() -> None:
    async with OpenAIStub(coppola_policy) as stub:
        trajectory = await codetool.solve_async(QUESTION, tools="tmdb", overrides=_overrides(stub.base_url))
    assert trajectory.stop_reason == "finished", [node.error for node in trajectory.nodes]
    assert trajectory.final_answer is not None and trajectory.final_answer.startswith("Sofia Coppola directed")
    assert trajectory.query == QUESTION


async def test_the_blocking_form_takes_a_config_and_a_query(tmdb_spec: Path) -> None:
    async with OpenAIStub(coppola_policy) as stub:
        config = load_config(overrides=_overrides(stub.base_url), environ={})
        query = Query(query_id="q0", text=QUESTION)
        trajectory = await asyncio.to_thread(
            solve, query, tools="tmdb", tool_options={"spec_path": str(tmdb_spec)}, config=config
        )
    assert trajectory.final_answer is not None and trajectory.final_answer.startswith("Sofia Coppola directed")
    assert len(stub.requests) == 3


def test_an_unknown_tool_provider_is_one_config_error() -> None:
    with pytest.raises(ConfigError, match="no-such-tools"):
        solve(QUESTION, tools="no-such-tools", overrides={"llm": {"base_url": "http://127.0.0.1:9/v1"}})


async def test_providers_from_the_facade_are_the_registry_ones(tmdb_spec: Path) -> None:
    async with create_provider("tmdb", spec_path=str(tmdb_spec)) as provider:
        toolset = provider.toolset_for(Query(query_id="q", text=QUESTION))
    assert "GET_search_person" in toolset.docs
