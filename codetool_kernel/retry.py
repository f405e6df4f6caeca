"""One retry policy for every endpoint CodeTool calls (policy LLM, judge, PRM, simulators).

A failure that another attempt may not repeat (a refused connection, a timeout, HTTP 429 or
5xx, a malformed answer) is retried with exponential backoff; the last failure is reported
in one line that names the endpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
"""HTTP statuses worth another attempt."""


class TransientFault(Exception):
    """One attempt failed in a way another attempt may not (`str()` says how)."""


@dataclass(frozen=True)
class Backoff:
    """`retries` more attempts after the first, waiting `base_s * 2**k` (at most `max_s`) before each."""

    retries: int = 2
    base_s: float = 0.5
    max_s: float = 8.0

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.base_s * 2**attempt)

    async def call(self, attempt: Callable[[], Awaitable[T]], give_up: Callable[[int, str], Exception]) -> T:
        """Await `attempt()` until it does not raise `TransientFault`; then raise `give_up(attempts, last_fault)`."""
        attempts = max(0, self.retries) + 1
        for number in range(attempts):
            try:
                return await attempt()
            except TransientFault as exc:
                fault = str(exc)
            if number + 1 < attempts:
                await asyncio.sleep(self.delay(number))
        raise give_up(attempts, fault)
