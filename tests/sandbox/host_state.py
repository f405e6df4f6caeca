"""Looking at the host from a test: its processes, and waiting for a condition with a deadline."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WAIT_S = 15.0


@dataclass(frozen=True)
class HostProcess:
    state: str
    ppid: int
    pgid: int
    uid: int


def processes() -> dict[int, HostProcess]:
    """Every process this test can see, by pid."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                status = Path(f"/proc/{entry}/status").read_text()  # its Uid line holds even when not dumpable
            except OSError:
                continue
            state, ppid, pgid = stat.rsplit(")", 1)[1].split()[:3]
            uid = int(status.split("\nUid:", 1)[1].split()[0])
            found[int(entry)] = HostProcess(state, int(ppid), int(pgid), uid)
    return found


async def until(condition: Callable[[], bool], what: str, *, blocking: bool = False, timeout_s: float = WAIT_S) -> None:
    """Poll `condition` (in a thread when `blocking`) until it holds; fail after `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            while not (await asyncio.to_thread(condition) if blocking else condition()):
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"gave up waiting for {what}") from None
