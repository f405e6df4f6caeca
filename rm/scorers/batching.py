"""Micro-batching: merge items that arrive close together into one call of a blocking batch function.

The batch function (a forward pass) runs on a caller-supplied executor, never on the event loop.
A batch closes when it holds `max_batch` items or when its oldest item has waited `window_s`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Generic, TypeVar

from codetool_kernel.aio import settled
from codetool_kernel.errors import RewardModelError
from codetool_kernel.text import one_line
from rm.config import BatchingConfig
from rm.errors import ScorerOverloadedError

Item = TypeVar("Item")
Result = TypeVar("Result")

BatchFunction = Callable[[list[Item]], Sequence[Result | Exception]]
"""Blocking: one result (or the exception for that item) per input item, in order."""


@dataclass
class _Waiting(Generic[Item]):
    item: Item
    future: asyncio.Future
    arrived: float


class MicroBatcher(Generic[Item, Result]):
    """Queue items from many coroutines; a single worker task feeds them to `run_batch` in batches."""

    def __init__(self, run_batch: BatchFunction, config: BatchingConfig, executor: Executor) -> None:
        self._run_batch = run_batch
        self._config = config
        self._executor = executor
        self._waiting: deque[_Waiting[Item]] = deque()
        self._in_flight: list[_Waiting[Item]] = []
        self._arrival = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._batches = 0
        self._largest_batch = 0
        self._rejected = 0

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="rm-micro-batcher")

    async def aclose(self) -> None:
        """Stop the worker and fail everything still queued or in flight."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        closed = RewardModelError("the scorer was shut down before this item was scored")
        for waiting in [*self._in_flight, *self._waiting]:
            if not waiting.future.done():
                waiting.future.set_exception(closed)
        self._waiting.clear()
        self._in_flight = []

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        """Results for `items` in order; raises the first item's error if any item failed."""
        if self._worker is None:
            raise RewardModelError("the scorer is not started")
        if len(self._waiting) + len(items) > self._config.max_queue:
            self._rejected += len(items)
            raise ScorerOverloadedError(
                f"scoring queue is full ({len(self._waiting)} of {self._config.max_queue} items waiting); retry later"
            )
        loop = asyncio.get_running_loop()
        entries = [_Waiting(item, loop.create_future(), loop.time()) for item in items]
        self._waiting.extend(entries)
        self._arrival.set()
        # Cancelling this call cancels the futures; the worker then drops those items.
        return settled(await asyncio.gather(*(e.future for e in entries), return_exceptions=True))

    def counters(self) -> dict[str, int]:
        return {
            "forward_passes": self._batches,
            "max_batch": self._largest_batch,
            "queued_items": len(self._waiting),
            "rejected_items": self._rejected,
        }

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._collect(loop)
            batch = self._take()
            if not batch:
                continue
            self._batches += 1
            self._largest_batch = max(self._largest_batch, len(batch))
            self._in_flight = batch
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [w.item for w in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} items")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the forward pass itself failed: every item in it fails alike
                results = [RewardModelError(f"forward pass failed: {one_line(exc)}")] * len(batch)
            self._in_flight = []
            for waiting, result in zip(batch, results, strict=True):
                if waiting.future.done():
                    continue
                if isinstance(result, Exception):
                    waiting.future.set_exception(result)
                else:
                    waiting.future.set_result(result)

    async def _collect(self, loop: asyncio.AbstractEventLoop) -> None:
        """Return when a batch should go: it is full, or its oldest item has waited out the window."""
        while not self._waiting:
            self._arrival.clear()
            await self._arrival.wait()
        deadline = self._waiting[0].arrived + self._config.window_ms / 1000.0
        while len(self._waiting) < self._config.max_batch:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrival.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrival.wait()
            except TimeoutError:
                return

    def _take(self) -> list[_Waiting[Item]]:
        batch: list[_Waiting[Item]] = []
        while self._waiting and len(batch) < self._config.max_batch:
            waiting = self._waiting.popleft()
            if not waiting.future.cancelled():
                batch.append(waiting)
        return batch
