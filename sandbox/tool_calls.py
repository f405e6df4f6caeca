"""Host side of the sandbox's HTTP calls: `http_request` in, `ToolHandler`, `http_response` out."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import ValidationError

from codetool_kernel.protocol import ApiCall, ToolHandler, ToolRequest, ToolResponse
from codetool_kernel.text import one_line
from sandbox.channel import HTTP_RESPONSE, Message

_ERROR_CHARS = 300



class ToolCallServer:
    """Answers one execution's calls through `tools`, refusing all when it is None.

    It enforces the per-execution call cap on the host (the runner enforces it too, but the
    host does not rely on a runner) and keeps the `ApiCall` record of every call, in order.
    """

    def __init__(self, tools: ToolHandler | None, max_calls: int) -> None:
        self.tools = tools
        self.max_calls = max_calls
        self.calls: list[ApiCall] = []
        self.requests_seen = 0
        self.over_limit = False

    async def answer(self, message: Message) -> Message:
        """The `http_response` for one `http_request` message."""
        call_id = message.get("call_id")
        self.requests_seen += 1
        try:
            request = _request_from(message)
        except (ValidationError, KeyError, TypeError, ValueError) as exc:
            return self._refuse(call_id, None, f"malformed HTTP call from the sandbox: {exc}")
        if self.requests_seen > self.max_calls:
            first_refusal = not self.over_limit
            self.over_limit = True
            refusal = f"API call limit reached: at most {self.max_calls} calls per execution"
            return self._refuse(call_id, request if first_refusal else None, refusal)
        if self.tools is None:
            return self._refuse(call_id, request, f"{request.method} {request.url}: HTTP calls are refused (this sandbox has no tool gateway)")
        started = time.monotonic()
        try:
            response = await self.tools(request)
        except asyncio.CancelledError:
            self.calls.append(_minimal_call(request, error="abandoned: the execution ended before the call was answered"))
            raise
        except Exception as exc:  # noqa: BLE001 - a failing handler must not take the execution down
            return self._refuse(call_id, request, f"{request.method} {request.url}: the tool gateway failed ({type(exc).__name__}: {exc})")
        if response.call is not None:
            self.calls.append(response.call)
        else:
            status = response.status if response.error is None else None
            self.calls.append(_minimal_call(request, status, response.error, time.monotonic() - started))
        return _response_message(call_id, response)

    def _refuse(self, call_id: Any, request: ToolRequest | None, reason: str) -> Message:
        reason = one_line(reason)
        if request is not None:
            self.calls.append(_minimal_call(request, error=reason))
        return _response_message(call_id, ToolResponse(status=0, error=reason))


def _request_from(message: Message) -> ToolRequest:
    timeout = message.get("timeout")
    return ToolRequest(
        method=str(message.get("method") or "GET").upper(),
        url=str(message["url"]),
        params=message.get("params") or None,
        headers=message.get("headers") or None,
        json_body=message.get("json"),
        data=message.get("data"),
        timeout_s=float(timeout) if timeout is not None else None,
    )


def _minimal_call(request: ToolRequest, status: int | None = None, error: str | None = None, latency_s: float = 0.0) -> ApiCall:
    body = request.json_body if request.json_body is not None else request.data
    return ApiCall(method=request.method, url=request.url, params=request.params, body=body, status=status, error=error, latency_s=latency_s)


def _response_message(call_id: Any, response: ToolResponse) -> Message:
    return {
        "type": HTTP_RESPONSE,
        "call_id": call_id,
        "status": response.status,
        "headers": dict(response.headers),
        "body": response.body,
        "error": response.error,
    }


def too_large_response(message: Message, reason: str) -> Message:
    """The error answer sent in place of a response that does not fit in one frame."""
    return _response_message(message.get("call_id"), ToolResponse(status=0, error=one_line(f"the API response cannot reach the sandbox: {reason}")))
