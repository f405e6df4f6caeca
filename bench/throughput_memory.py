"""Peak resident memory of this process and its children while a block runs (/proc, else psutil).

The poller runs in this process, beside the run it measures, so each poll must cost little: on
Linux it walks this process's tree through `/proc/PID/task/TID/children` and reads each member's
`statm` (a few reads per process of the tree) instead of listing every process of the machine,
which psutil's `children(recursive=True)` does (with several reads per process) and which, polled
every 50 ms, used to cost the driver more CPU than the run itself.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_POLL_S = 0.05
_CHILDREN_FILES = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()


def _children(pid: int) -> list[int]:
    """The children of `pid` (every thread's), from /proc; none once it is gone."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as listing:
                found += [int(child) for child in listing.read().split()]
        except OSError:
            continue
    return found


def _rss_from_proc(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _tree_rss_from_proc(exclude: set[int | None]) -> int:
    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        if pid in exclude:
            continue
        total += _rss_from_proc(pid)
        todo += _children(pid)
    return total


def _tree_rss_from_psutil(exclude: set[int | None]) -> int:
    import psutil

    me = psutil.Process()
    total, skipped = 0, set()
    for pid in exclude:
        if pid:
            try:
                skipped |= {pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))}
            except psutil.Error:
                continue
    for process in [me, *me.children(recursive=True)]:
        if process.pid in skipped:
            continue
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def tree_rss(exclude: set[int | None]) -> int:
    """Bytes resident in this process and all its descendants, less the `exclude` processes and theirs."""
    return _tree_rss_from_proc(exclude) if _CHILDREN_FILES else _tree_rss_from_psutil(exclude)


class PeakRss:
    """`with PeakRss(exclude={server_pid}) as memory:` ... then `memory.figures(in_flight)`."""

    def __init__(self, exclude: set[int | None]) -> None:
        self.exclude = exclude
        self.before = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="peak-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self.before = self.peak = tree_rss(self.exclude)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _poll(self) -> None:
        while not self._stop.wait(_POLL_S):
            self.peak = max(self.peak, tree_rss(self.exclude))

    def figures(self, in_flight: int) -> dict[str, Any]:
        """Peak MB, MB before the run, and MB above that per query in flight (containers not counted)."""
        mb = 1024 * 1024
        return {"peak_mb": self.peak / mb, "before_mb": self.before / mb,
                "mb_per_query": (self.peak - self.before) / mb / max(1, in_flight)}  # fmt: skip
