"""The host-side tool gateway: serves every HTTP call of sandboxed code.

`ToolGateway` owns one pooled `aiohttp.ClientSession` and the global bounds (concurrency,
time, response size). `GatewaySession` is the `ToolHandler` of one query: it applies the
tool set's allow-list and secrets, memoises successful calls so that replays of earlier
steps never reach the API twice, and keeps the audit trail (`calls`).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from multidict import CIMultiDict
from pydantic import Field, ValidationError
from yarl import URL

from codetool_kernel.errors import ConfigError, ToolGatewayError
from codetool_kernel.lifecycle import AsyncLifecycle
from codetool_kernel.protocol import ApiCall, ToolRequest, ToolResponse
from codetool_kernel.validation import FrozenModel, describe_validation_error
from tools.http_server import SOURCE_HEADER
from tools.scrubbing import SecretScrubber
from tools.secrets import attach_to_body, attach_to_headers, attach_to_query
from tools.toolset import ToolSet
from tools.url_policy import Target, UrlRefused, resolve_target

log = structlog.get_logger(__name__)

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_DROPPED_REQUEST_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "cookie"})
_DROPPED_RESPONSE_HEADERS = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "connection", "set-cookie"}
)
TRUNCATED_HEADER = "X-CodeTool-Truncated"
_SCRUB_INLINE_CHARS = 4 * 1024


class GatewayConfig(FrozenModel):
    """Bounds applied to every call through a gateway."""

    timeout_s: float = Field(30.0, gt=0)
    max_response_bytes: int = Field(1_000_000, gt=0)
    concurrency: int = Field(32, gt=0)
    """Calls in flight upstream at once."""
    memo: bool = True
    """Answer a repeated successful call of one query from memory (replays never reach the API twice)."""
    memo_max_entries: int = Field(1024, gt=0)


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    body: str
    source: str = ""
    """The embedded servers' `X-CodeTool-Source`: `simulated`, `recorded`, `live`, or "" (unknown)."""


class ToolGateway(AsyncLifecycle):
    """Pooled HTTP access for sandboxed code; use `async with ToolGateway() as gw`."""

    def __init__(self, config: GatewayConfig | None = None, **options: Any) -> None:
        """`config`, or the `GatewayConfig` fields as keyword options (`ToolGateway(concurrency=8)`)."""
        if config is None:
            try:
                config = GatewayConfig(**options)
            except ValidationError as exc:
                raise ConfigError(f"tool gateway: {describe_validation_error(exc)}") from None
        elif options:
            raise ConfigError("tool gateway: give a GatewayConfig or keyword options, not both")
        self.config = config
        self._slots = asyncio.Semaphore(config.concurrency)
        self._http: aiohttp.ClientSession | None = None
        self._active = 0
        self._queued = 0

    @property
    def active_calls(self) -> int:
        """Calls being sent upstream right now."""
        return self._active

    @property
    def queued_calls(self) -> int:
        """Calls waiting for a free concurrency slot."""
        return self._queued

    async def start(self) -> None:
        """Open the pooled HTTP session (idempotent)."""
        if self._http is None:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.concurrency),
                cookie_jar=aiohttp.DummyCookieJar(),  # no state may leak from one query to another
            )

    async def aclose(self) -> None:
        """Close the HTTP session; sessions created from this gateway stop working."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def session(self, toolset: ToolSet, query_id: str = "") -> GatewaySession:
        """A `ToolHandler` for one query: its own memo and audit trail over `toolset`."""
        return GatewaySession(self, toolset, query_id)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: list[tuple[str, str]],
        headers: Mapping[str, str],
        json_body: Any,
        data: Any,
        timeout_s: float,
    ) -> tuple[_Answer, bool]:
        # One bounded upstream call: the answer and whether its body was cut. Raises aiohttp errors.
        if self._http is None:
            raise ToolGatewayError("tool gateway is not started: use `async with ToolGateway()` or await start()")
        self._queued += 1
        try:
            await self._slots.acquire()
        finally:
            self._queued -= 1
        self._active += 1
        try:
            async with self._http.request(
                method,
                URL(url, encoded=True),
                params=params or None,
                headers=headers,
                json=json_body,
                data=data,
                allow_redirects=False,  # a redirect could lead outside the allow-list
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response:
                raw, cut = await _read_capped(response, self.config.max_response_bytes)
                kept = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_RESPONSE_HEADERS}
                source = kept.pop(SOURCE_HEADER, None) or ""
                return _Answer(response.status, kept, _decode_body(raw, response.charset), source), cut
        finally:
            self._active -= 1
            self._slots.release()


class GatewaySession:
    """Serves one query's sandboxed HTTP calls: `await session(ToolRequest(...)) -> ToolResponse`."""

    def __init__(self, gateway: ToolGateway, toolset: ToolSet, query_id: str = "") -> None:
        self.gateway = gateway
        self.toolset = toolset
        self.query_id = query_id
        self.calls: list[ApiCall] = []
        """Every call in the order it finished, refused and memoised ones included."""
        self._scrubber = SecretScrubber(toolset.secrets)
        self._memo: dict[str, _Answer] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: Counter[str] = Counter()

    async def __call__(self, request: ToolRequest) -> ToolResponse:
        started = time.monotonic()
        method = request.method.upper()
        call = ApiCall(
            method=method,
            url=request.url,
            params=request.params,
            body=request.json_body if request.json_body is not None else request.data,
            api_name=self.toolset.api_name_for(method, request.url, _body_for_naming(request)),
        )
        try:
            if method not in _METHODS:
                raise UrlRefused(f"HTTP method {request.method!r} is not supported")
            target = resolve_target(request.url, self.toolset.routes)
        except UrlRefused as exc:
            return self._finish(call, started, ToolResponse(status=0, error=str(exc)))
        if not self.gateway.config.memo:
            return self._finish(call, started, await self._forward(method, target, request, call))
        key = _memo_key(method, request)
        async with self._single_flight(key):
            stored = self._memo.get(key)
            if stored is not None:
                call.memo_hit = True
                call.simulated = stored.source == "simulated"
                cached = ToolResponse(status=stored.status, headers=dict(stored.headers), body=stored.body)
                return self._finish(call, started, cached)
            response = await self._forward(method, target, request, call)
            if response.error is None and 200 <= response.status < 300:
                source = "simulated" if call.simulated else ""
                self._remember(key, _Answer(response.status, dict(response.headers), response.body, source))
            return self._finish(call, started, response)

    def _finish(self, call: ApiCall, started: float, response: ToolResponse) -> ToolResponse:
        call.status = response.status if response.error is None else None
        call.error = response.error
        call.latency_s = time.monotonic() - started
        self.calls.append(call)
        log.debug(
            "tool call",
            query_id=self.query_id,
            method=call.method,
            url=call.url,
            status=call.status,
            memo_hit=call.memo_hit,
            error=call.error,
        )
        response.call = call
        return response

    async def _forward(self, method: str, target: Target, request: ToolRequest, call: ApiCall) -> ToolResponse:
        config = self.gateway.config
        timeout_s = config.timeout_s
        if request.timeout_s is not None and request.timeout_s > 0:
            timeout_s = min(request.timeout_s, timeout_s)
        slots, secrets = target.route.secret_slots, self.toolset.secrets
        sent_headers = [
            (str(k), str(v)) for k, v in (request.headers or {}).items() if str(k).lower() not in _DROPPED_REQUEST_HEADERS
        ]
        headers = CIMultiDict(attach_to_headers(sent_headers, slots, secrets))
        headers.update(target.route.inject_headers)
        try:
            answer, cut = await self.gateway._send(
                method,
                target.url,
                params=attach_to_query(_query_items(request.params or {}), slots, secrets),
                headers=headers,
                # like `requests`, a `data=` body wins over `json=` when both are given
                json_body=attach_to_body(request.json_body, slots, secrets) if request.data is None else None,
                data=attach_to_body(request.data, slots, secrets),
                timeout_s=timeout_s,
            )
        except (aiohttp.ClientError, TimeoutError, ValueError, TypeError, UnicodeError) as exc:
            reason = await self._scrub(_describe_failure(exc, timeout_s))
            return ToolResponse(status=0, error=f"{method} {request.url}: {reason}")
        call.simulated = answer.source == "simulated"
        headers_back = {self._scrubber.scrub(k): self._scrubber.scrub(v) for k, v in answer.headers.items()}
        body = await self._scrub(answer.body)
        if cut:
            limit = config.max_response_bytes
            headers_back[TRUNCATED_HEADER] = str(limit)
            body += f"\n[response cut by the tool gateway: it was longer than {limit} bytes]"
        return ToolResponse(status=answer.status, headers=headers_back, body=body)

    async def _scrub(self, text: str) -> str:
        """`text` without the tool set's secrets; long texts are scanned off the event loop."""
        if len(text) < _SCRUB_INLINE_CHARS:
            return self._scrubber.scrub(text)
        return await asyncio.to_thread(self._scrubber.scrub, text)

    def _remember(self, key: str, answer: _Answer) -> None:
        if len(self._memo) >= self.gateway.config.memo_max_entries:
            self._memo.pop(next(iter(self._memo)))
        self._memo[key] = answer

    @contextlib.asynccontextmanager
    async def _single_flight(self, key: str) -> AsyncIterator[None]:
        """Serialise identical calls so that concurrent replays wait for the first answer."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[key] -= 1
            if not self._lock_users[key]:
                del self._lock_users[key], self._locks[key]


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], True
    return b"".join(chunks), False


def _decode_body(raw: bytes, charset: str | None) -> str:
    """The body as text: its declared charset when Python knows it, else UTF-8; bad bytes become U+FFFD."""
    codec = "utf-8"
    if charset:
        with contextlib.suppress(LookupError):
            codec = codecs.lookup(charset).name
    return raw.decode(codec, errors="replace")


def _query_items(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Query pairs the way `requests` builds them: None dropped, lists repeated, the rest `str()`."""
    items: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is not None:
                items.append((str(key), str(item)))
    return items


def _body_for_naming(request: ToolRequest) -> Any:
    if request.json_body is not None:
        return request.json_body
    if isinstance(request.data, str):
        with contextlib.suppress(ValueError):
            return json.loads(request.data)
    return request.data


def _memo_key(method: str, request: ToolRequest) -> str:
    # headers belong to the key: a replay without the auth header must not get the authorised answer
    headers = {str(k).lower(): v for k, v in (request.headers or {}).items()}
    return json.dumps(
        [method, request.url, request.params or {}, request.json_body, request.data, headers],
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )


def _describe_failure(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout_s:g}s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host {exc.host!r}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = (exc.os_error.strerror or str(exc.os_error)) if exc.os_error else str(exc)
        return f"cannot connect to {exc.host}:{exc.port} ({reason})"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
