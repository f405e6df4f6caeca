"""Peak resident memory of this process and its children while a block runs (psutil, else /proc)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_POLL_S = 0.05


def _children_from_proc(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _rss_from_proc(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(exclude: set[int | None]) -> int:
    """Bytes resident in this process and all its descendants, less the `exclude` processes and theirs."""
    try:
        import psutil
    except ImportError:
        root = os.getpid()
        skipped = {p for pid in exclude if pid for p in (pid, *_children_from_proc(pid))}
        pids = [root, *_children_from_proc(root)]
        return sum(_rss_from_proc(pid) for pid in pids if pid not in skipped)
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
