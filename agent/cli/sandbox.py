"""`python -m agent sandbox ...`: the sandbox's command line with `run --allow` served by the tool gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from codetool_kernel.protocol import ToolHandler
from sandbox.cli import use_tool_opener
from tools.gateway import ToolGateway
from tools.toolset import Route, ToolSet


@contextlib.asynccontextmanager
async def _gateway_for(allow: list[str]) -> AsyncIterator[ToolHandler | None]:
    if not allow:
        yield None
        return
    toolset = ToolSet(name="adhoc", apis=(), routes=tuple(Route(prefix=p, upstream=p) for p in allow), docs="")
    async with ToolGateway() as gateway:
        yield gateway.session(toolset, query_id="cli")


sandbox_app = use_tool_opener(_gateway_for)
