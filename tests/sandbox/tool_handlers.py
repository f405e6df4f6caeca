"""A real async `ToolHandler` for the sandbox tests: scripted answers, every request recorded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from codetool_kernel.protocol import ToolRequest, ToolResponse

Answer = ToolResponse | Callable[[ToolRequest], ToolResponse]


def json_response(body: Any, status: int = 200) -> ToolResponse:
    return ToolResponse(status=status, headers={"Content-Type": "application/json"}, body=json.dumps(body))


class RecordingHandler:
    """Answers by URL (exact match, else `default`) and keeps the requests it got, in order.

    `gate`, when set, makes every call wait for it: a test can hold an execution inside
    an API call and act on the sandbox meanwhile.
    """

    def __init__(self, answers: dict[str, Answer] | None = None, default: Answer | None = None) -> None:
        self.answers = answers or {}
        self.default = default or json_response({"echo": True})
        self.requests: list[ToolRequest] = []
        self.entered = asyncio.Event()
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: ToolRequest) -> ToolResponse:
        self.requests.append(request)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.get(request.url, self.default)
        return answer(request) if callable(answer) else answer
