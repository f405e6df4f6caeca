"""A stand-in OpenAI-compatible server on loopback, answering from scripted policies.

It speaks the real chat-completions wire protocol (`n`, `stop`, `usage`, `logprobs`,
`tools`/`tool_choice`), so the product under test talks to it through the official
`openai` client and never knows. A policy is a function of the request JSON that returns
one `Reply` per choice it wants to produce (strings are shorthand for plain content).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass
class Reply:
    """One choice of a completion."""

    content: str | None = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    top_logprobs: dict[str, float] | None = None
    """For `logprobs` requests: the first token's top alternatives (token -> logprob)."""
    finish_reason: str | None = None


Policy = Callable[[dict[str, Any]], Sequence[Reply | str]]


@dataclass
class Fault:
    """Make the next `count` requests fail with `status` (e.g. 429, 500), or answer `body` as it is."""

    status: int
    count: int = 1
    body: str | None = None
    """A raw body to answer instead of an error (malformed JSON, JSON without `choices` ...)."""


MALFORMED_BODIES = {
    "not-json": '{"id": "chatcmpl-1", "choices": [',
    "no-choices": '{"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "stub-model"}',
    "null-choices": '{"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "stub-model", "choices": null}',
    "bad-message": '{"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "stub-model",'
    ' "choices": [{"index": 0, "finish_reason": "stop"}]}',
    "negative-usage": '{"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "stub-model",'
    ' "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],'
    ' "usage": {"prompt_tokens": -5, "completion_tokens": 1, "total_tokens": -4}}',
}
"""Answers with status 200 that no OpenAI-compatible server should give, by name."""


def count_tokens(text: str) -> int:
    return len(text.split())


def _apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    if cut >= 0:
        return text[:cut], True
    return text, False


class OpenAIStub:
    """`async with OpenAIStub(policy) as stub:` then point a client at `stub.base_url`."""

    def __init__(
        self, policy: Policy, *, model: str = "stub-model", max_choices: int | None = None, latency_s: float = 0.0
    ) -> None:
        self.policy = policy
        self.model = model
        self.max_choices = max_choices
        """Answer at most this many choices per request, like servers that ignore `n`."""
        self.latency_s = latency_s
        """Seconds each completion takes (awaited on the server's loop, as a busy model server would)."""
        self.in_flight = 0
        self.peak_in_flight = 0
        """The most chat requests the server held at once."""
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def __aenter__(self) -> OpenAIStub:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, status: int, count: int = 1) -> None:
        self.faults.append(Fault(status, count))

    def malformed_next(self, kind: str, count: int = 1) -> None:
        """Answer the next `count` requests with one of `MALFORMED_BODIES` (status 200)."""
        self.faults.append(Fault(200, count, MALFORMED_BODIES[kind]))

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.faults:
            fault = self.faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self.faults.pop(0)
            if fault.body is not None:
                return web.Response(text=fault.body, status=fault.status, content_type="application/json")
            return web.json_response({"error": {"message": "scripted fault", "type": "server_error"}}, status=fault.status)
        replies = await asyncio.to_thread(self.policy, body)
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        n = int(body.get("n") or 1)
        limit = n if self.max_choices is None else min(n, self.max_choices)
        replies = list(itertools.islice(itertools.cycle(replies), limit)) if replies else []
        stop = body.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        prompt_tokens = sum(count_tokens(str(m.get("content") or "")) for m in body.get("messages", []))
        choices, completion_tokens = [], 0
        for index, raw in enumerate(replies):
            reply = Reply(content=raw) if isinstance(raw, str) else raw
            choices.append(self._choice(index, reply, stop, bool(body.get("logprobs"))))
            completion_tokens += count_tokens(choices[-1]["message"]["content"] or "")
        return web.json_response(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", self.model),
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    def _choice(self, index: int, reply: Reply, stop: Sequence[str], logprobs: bool) -> dict[str, Any]:
        content, stopped = _apply_stop(reply.content or "", stop) if reply.content is not None else (None, False)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        finish = reply.finish_reason or "stop"
        if reply.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{index}_{k}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for k, call in enumerate(reply.tool_calls)
            ]
            finish = "tool_calls"
        choice: dict[str, Any] = {"index": index, "message": message, "finish_reason": finish}
        if logprobs:
            top = reply.top_logprobs or {}
            first = max(top, key=top.get) if top else (content or "")[:1]
            choice["logprobs"] = {
                "content": [
                    {
                        "token": first,
                        "logprob": top.get(first, 0.0),
                        "bytes": list(first.encode()),
                        "top_logprobs": [
                            {"token": tok, "logprob": lp, "bytes": list(tok.encode())} for tok, lp in top.items()
                        ],
                    }
                ]
            }
        return choice
