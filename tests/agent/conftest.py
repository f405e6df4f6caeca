"""Agent tests: a real agent over the stand-in OpenAI server, real sandbox, real gateway and virtual APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentConfig, load_config
from tools import create_provider
from tools.toolset import ToolProvider


def agent_config(base_url: str, **search: Any) -> AgentConfig:
    return load_config(
        overrides={
            "llm": {"base_url": base_url, "api_key": "test", "model": "stub-model", "max_retries": 0},
            "search": search,
            "sandbox": {"backend": "restricted", "limits": {"timeout_s": 20}},
        },
        environ={},
    )


@pytest.fixture
async def stb_provider(tmp_path: Path) -> AsyncIterator[ToolProvider]:
    async with create_provider("stabletoolbench", cache_dir=str(tmp_path / "cache")) as provider:
        yield provider


@pytest.fixture
async def tmdb_provider(tmdb_spec: Path) -> AsyncIterator[ToolProvider]:
    async with create_provider("tmdb", spec_path=str(tmdb_spec)) as provider:
        yield provider


@pytest.fixture
def config_for() -> Callable[..., AgentConfig]:
    return agent_config
