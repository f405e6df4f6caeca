"""The worker pool behind `agent run` and `agent collect`: queries in flight at once, and a clean stop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class PoolOutcome(Generic[T]):
    cancelled: list[T] = field(default_factory=list)
    """Items in flight when the pool was halted, cancelled (to be tried again by a later run)."""
    untried: int = 0
    """Items never started because the pool was halted first."""


class WorkPool(Generic[T]):
    """Handles items with at most `concurrency` in flight; `halt()` starts no more and cancels those in flight.

    A handler calls `settle()` once its item may no longer be cancelled (it is writing its result). An
    exception other than a halt's cancellation ends the whole pool (the run itself broke).
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.halted = False
        self._in_flight: dict[asyncio.Task[None], T] = {}

    async def run(self, items: Sequence[T], handle: Callable[[T], Awaitable[None]]) -> PoolOutcome[T]:
        outcome: PoolOutcome[T] = PoolOutcome()
        pending: asyncio.Queue[T] = asyncio.Queue()
        for item in items:
            pending.put_nowait(item)

        async def work() -> None:
            me = asyncio.current_task()
            assert me is not None
            while not self.halted and not pending.empty():
                item = pending.get_nowait()
                self._in_flight[me] = item
                try:
                    await handle(item)
                except asyncio.CancelledError:
                    if me not in self._in_flight or not self.halted:
                        raise  # the whole run is being stopped (SIGINT, SIGTERM)
                    outcome.cancelled.append(item)
                    return
                finally:
                    self._in_flight.pop(me, None)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(items))):
                    group.create_task(work())
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None
        outcome.untried = pending.qsize()
        return outcome

    def settle(self) -> None:
        """The calling handler's item is past cancelling (its result is being written)."""
        self._in_flight.pop(asyncio.current_task(), None)  # type: ignore[arg-type]

    def halt(self) -> None:
        """Start no more items and cancel the ones in flight, the caller's own excepted."""
        if self.halted:
            return
        self.halted = True
        me = asyncio.current_task()
        for task in self._in_flight:
            if task is not me:
                task.cancel()
