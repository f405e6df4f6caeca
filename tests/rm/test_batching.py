"""MicroBatcher with a real blocking batch function on a real worker thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from codetool_kernel.errors import RewardModelError
from rm import BatchingConfig, ScorerOverloadedError
from rm.scorers import MicroBatcher


class GatedDoubler:
    """Doubles numbers; holds every batch until `gate` opens, and records the batches it saw."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[int]] = []

    def __call__(self, items: list[int]) -> list[int | Exception]:
        self.entered.set()
        self.gate.wait(timeout=30)
        self.batches.append(list(items))
        return [ValueError(f"odd {i}") if i < 0 else 2 * i for i in items]


async def _stuck_in_a_pass(
    work: GatedDoubler, executor: ThreadPoolExecutor, *, max_queue: int = 8
) -> tuple[MicroBatcher[int, int], asyncio.Future[list[int]]]:
    """A batch-size-1 batcher whose worker sits in a pass over item 1 until `work.gate` opens."""
    batcher: MicroBatcher[int, int] = MicroBatcher(
        work, BatchingConfig(max_batch=1, window_ms=0, max_queue=max_queue), executor
    )
    batcher.start()
    in_pass = asyncio.ensure_future(batcher.submit([1]))
    await asyncio.to_thread(work.entered.wait, 30)
    return batcher, in_pass


@pytest.fixture
async def executor() -> AsyncIterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown(wait=True)


async def test_items_submitted_together_share_a_batch_in_order(executor: ThreadPoolExecutor) -> None:
    work = GatedDoubler()
    work.gate.set()
    batcher = MicroBatcher(work, BatchingConfig(max_batch=8, window_ms=1000, max_queue=32), executor)
    batcher.start()
    results = await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(4)))
    await batcher.aclose()
    assert results == [[2 * i, 2 * (i + 100)] for i in range(4)]
    assert work.batches == [[0, 100, 1, 101, 2, 102, 3, 103]]
    assert batcher.counters()["forward_passes"] == 1 and batcher.counters()["max_batch"] == 8


async def test_batches_never_exceed_max_batch(executor: ThreadPoolExecutor) -> None:
    work = GatedDoubler()
    work.gate.set()
    batcher = MicroBatcher(work, BatchingConfig(max_batch=3, window_ms=0, max_queue=32), executor)
    batcher.start()
    assert await batcher.submit(list(range(7))) == [2 * i for i in range(7)]
    await batcher.aclose()
    assert [len(b) for b in work.batches] == [3, 3, 1]


async def test_a_full_queue_refuses_at_once_and_loses_nothing_queued(executor: ThreadPoolExecutor) -> None:
    work = GatedDoubler()
    batcher, first = await _stuck_in_a_pass(work, executor, max_queue=2)  # the queue itself is empty
    queued = asyncio.ensure_future(batcher.submit([2, 3]))
    await asyncio.sleep(0)
    with pytest.raises(ScorerOverloadedError, match="queue is full"):
        await batcher.submit([4])
    assert batcher.counters()["rejected_items"] == 1
    work.gate.set()
    assert await first == [2] and await queued == [4, 6]
    await batcher.aclose()


async def test_an_item_error_fails_its_request_only(executor: ThreadPoolExecutor) -> None:
    work = GatedDoubler()
    work.gate.set()
    batcher = MicroBatcher(work, BatchingConfig(max_batch=8, window_ms=50, max_queue=32), executor)
    batcher.start()
    bad, good = await asyncio.gather(batcher.submit([5, -1]), batcher.submit([7]), return_exceptions=True)
    await batcher.aclose()
    assert isinstance(bad, ValueError) and "odd -1" in str(bad)
    assert good == [14]


async def test_a_failing_batch_function_fails_every_item_with_one_line(executor: ThreadPoolExecutor) -> None:
    def explode(items: list[int]) -> list[int]:
        raise RuntimeError("CUDA out of memory\nlong trace")

    batcher = MicroBatcher(explode, BatchingConfig(max_batch=8, window_ms=0, max_queue=32), executor)
    batcher.start()
    with pytest.raises(RewardModelError, match="forward pass failed: CUDA out of memory$"):
        await batcher.submit([1, 2])
    await batcher.aclose()


async def test_a_cancelled_request_is_dropped_before_its_pass(executor: ThreadPoolExecutor) -> None:
    work = GatedDoubler()
    batcher, running = await _stuck_in_a_pass(work, executor)
    abandoned = asyncio.ensure_future(batcher.submit([2]))
    kept = asyncio.ensure_future(batcher.submit([3]))
    await asyncio.sleep(0)
    abandoned.cancel()
    work.gate.set()
    assert await running == [2] and await kept == [6]
    await batcher.aclose()
    assert work.batches == [[1], [3]]


async def test_closing_fails_queued_items_instead_of_hanging(executor: ThreadPoolExecutor) -> None:
    work = GatedDoubler()
    batcher, in_pass = await _stuck_in_a_pass(work, executor)
    queued = asyncio.ensure_future(batcher.submit([2]))
    await asyncio.sleep(0)
    await batcher.aclose()
    work.gate.set()
    for request in (in_pass, queued):
        with pytest.raises(RewardModelError, match="shut down"):
            await request
    with pytest.raises(RewardModelError, match="not started"):
        await batcher.submit([3])
