"""Small asyncio helpers."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

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


def run_interruptible(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, where SIGINT and SIGTERM cancel `main` and, once it has cleaned up, raise `KeyboardInterrupt`.

    Cancelling lets every `async with` release what it holds (sandboxes, servers, sessions)
    before the process exits. Off the main thread (a Ray worker), signals are not touched.
    """
    if threading.current_thread() is not threading.main_thread():
        return asyncio.run(main)
    return asyncio.run(_stoppable(main))


async def _stoppable(main: Coroutine[Any, Any, T]) -> T:
    from codetool_kernel.cli import note_signal

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def stop(signum: int) -> None:
        if not received:
            note_signal(signum)
        received.append(signum)
        task.cancel()

    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await main
    except asyncio.CancelledError:
        if received:
            raise KeyboardInterrupt from None
        raise
    finally:
        for signum, handler in previous.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)
