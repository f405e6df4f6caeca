"""Small asyncio helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def gather_all(jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Await every job; if any failed, raise the first failure once all are settled."""
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    return settled(outcomes)


def settled(outcomes: Sequence[T | BaseException]) -> list[T]:
    """The values of `outcomes`, or the first exception among them raised."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes)  # type: ignore[arg-type]
