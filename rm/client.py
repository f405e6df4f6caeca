"""Async client of the PRM server, used by the agent's step loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from codetool_kernel.errors import RewardModelError
from codetool_kernel.retry import RETRY_STATUSES, Backoff, TransientFault
from codetool_kernel.text import one_line
from codetool_kernel.validation import describe_validation_error
from rm.errors import RouteMissingError
from rm.schemas import ErrorResponse, HealthResponse, ScoreResponse
from rm.scores import Conversation, ScoreResult

_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class RewardModelClient:
    """`async with RewardModelClient(url) as prm: results = await prm.score(conversations)`.

    All candidates of a step go in one `/score` request. Connection errors, timeouts, 429 and 5xx
    answers and malformed answers (unreadable JSON, the wrong number of scores, a score that is not
    a probability, a non-finite logit) are retried `retries` times with exponential backoff
    (`codetool_kernel.retry`); anything else, and running out of retries, raises `RewardModelError` with
    one line saying what happened.
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
        self._backoff = Backoff(retries=max(0, retries), base_s=backoff_s)
        self._max_connections = max_connections
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

        def read(answer: ScoreResponse) -> list[ScoreResult]:
            if len(answer.scores) != len(conversations) or len(answer.logits) != len(conversations):
                raise RewardModelError(f"{len(answer.scores)} scores for {len(conversations)} candidates")
            return [ScoreResult(s, yes, no) for s, (yes, no) in zip(answer.scores, answer.logits, strict=True)]

        return await self.call("POST", "/score", payload, ScoreResponse, read)

    async def health(self) -> HealthResponse:
        """The server's status, model, backend and counters."""
        return await self.call("GET", "/health", None, HealthResponse, lambda answer: answer)

    async def call(self, method: str, path: str, payload: Any, schema: type[M], read: Callable[[M], T]) -> T:
        """Send one request, parse its answer with `schema` and `read` it, retrying transport faults and malformed answers.

        `read` raises `RewardModelError` for an answer that parses but makes no sense (a score that is not a
        probability ...): that too is a fault of the PRM, retried like the others.
        """
        if self._session is None:
            raise RewardModelError("RewardModelClient is used outside `async with`")

        async def attempt() -> T:
            raw = await self._attempt(method, path, payload)
            try:
                return read(schema.model_validate_json(raw))
            except ValidationError as exc:
                raise TransientFault(f"answered an unreadable {path} body ({describe_validation_error(exc)})") from None
            except RewardModelError as exc:
                raise TransientFault(f"answered {path} with nonsense: {exc}") from None

        def give_up(attempts: int, fault: str) -> RewardModelError:
            tries = f" ({attempts} attempts)" if attempts > 1 else ""
            return RewardModelError(f"PRM at {self.url} {fault}{tries}")

        return await self._backoff.call(attempt, give_up)

    async def _attempt(self, method: str, path: str, payload: Any) -> bytes:
        assert self._session is not None
        try:
            async with self._session.request(method, self.url + path, json=payload) as response:
                body = await _read_capped(response, _MAX_RESPONSE_BYTES)
        except aiohttp.ClientConnectorError as exc:
            raise TransientFault(f"cannot be reached ({one_line(exc.os_error)})") from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise TransientFault(f"connection failed ({type(exc).__name__}: {one_line(exc)})") from None
        except TimeoutError:
            raise TransientFault(f"gave no answer within {self._timeout.total} s") from None
        if response.status == 200:
            return body
        message = f"HTTP {response.status}: {_error_text(body)}"
        if response.status in RETRY_STATUSES:
            raise TransientFault(f"answered {message}")
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
