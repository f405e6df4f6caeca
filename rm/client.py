"""Async client of the PRM server, used by the agent's step loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
from pydantic import ValidationError

from codetool.errors import RewardModelError
from codetool.validation import describe_validation_error
from rm.errors import RouteMissingError, one_line
from rm.schemas import ErrorResponse, HealthResponse, ScoreResponse
from rm.scores import Conversation, ScoreResult

_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Retryable(Exception):
    """One attempt failed in a way another attempt may not."""


class RewardModelClient:
    """`async with RewardModelClient(url) as prm: results = await prm.score(conversations)`.

    All candidates of a step go in one `/score` request. Connection errors, timeouts, 429 and 5xx
    answers are retried `retries` times with exponential backoff; anything else, and running out of
    retries, raises `RewardModelError` with one line saying what happened.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 60.0,
        retries: int = 2,
        max_connections: int = 8,
        backoff_s: float = 0.5,
    ) -> None:
        self.url = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retries = max(0, retries)
        self._max_connections = max_connections
        self._backoff_s = backoff_s
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RewardModelClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=self._max_connections)
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def score(self, conversations: Sequence[Conversation]) -> list[ScoreResult]:
        """One `ScoreResult` per conversation, in order, from a single `/score` request."""
        if not conversations:
            return []
        payload = {"items": [{"messages": list(conversation)} for conversation in conversations]}
        raw = await self._call("POST", "/score", payload)
        try:
            answer = ScoreResponse.model_validate_json(raw)
        except ValidationError as exc:
            raise RewardModelError(f"PRM at {self.url} answered an unreadable /score body: {describe_validation_error(exc)}") from None
        if len(answer.scores) != len(conversations) or len(answer.logits) != len(conversations):
            raise RewardModelError(
                f"PRM at {self.url} answered {len(answer.scores)} scores for {len(conversations)} candidates"
            )
        return [ScoreResult(s, yes, no) for s, (yes, no) in zip(answer.scores, answer.logits, strict=True)]

    async def health(self) -> HealthResponse:
        """The server's status, model, backend and counters."""
        raw = await self._call("GET", "/health", None)
        try:
            return HealthResponse.model_validate_json(raw)
        except ValidationError as exc:
            raise RewardModelError(f"PRM at {self.url} answered an unreadable /health body: {describe_validation_error(exc)}") from None

    async def post(self, path: str, payload: Any) -> bytes:
        """The raw body of a `POST path` answered 200, with this client's retries and limits."""
        return await self._call("POST", path, payload)

    async def _call(self, method: str, path: str, payload: Any) -> bytes:
        if self._session is None:
            raise RewardModelError("RewardModelClient is used outside `async with`")
        attempts = self._retries + 1
        for attempt in range(attempts):
            try:
                return await self._attempt(method, path, payload)
            except _Retryable as exc:
                failure = str(exc)
            if attempt + 1 < attempts:
                await asyncio.sleep(self._backoff_s * 2**attempt)
        raise RewardModelError(f"PRM at {self.url} failed after {attempts} attempts: {failure}")

    async def _attempt(self, method: str, path: str, payload: Any) -> bytes:
        assert self._session is not None
        try:
            async with self._session.request(method, self.url + path, json=payload) as response:
                body = await _read_capped(response, _MAX_RESPONSE_BYTES)
        except aiohttp.ClientConnectorError as exc:
            raise _Retryable(f"cannot connect ({one_line(exc.os_error)})") from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__}: {one_line(exc)})") from None
        except TimeoutError:
            raise _Retryable(f"no answer within {self._timeout.total} s") from None
        if response.status == 200:
            return body
        message = f"HTTP {response.status}: {_error_text(body)}"
        if response.status in _RETRY_STATUSES:
            raise _Retryable(message)
        error = RouteMissingError if response.status in (404, 405) else RewardModelError
        raise error(f"PRM at {self.url} refused {path}: {message}")


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise aiohttp.ClientPayloadError(f"answer larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_text(body: bytes) -> str:
    try:
        return ErrorResponse.model_validate_json(body).error
    except ValidationError:
        text = body.decode("utf-8", errors="replace").strip()
        return (text.splitlines()[0][:200] if text else "(empty body)")
