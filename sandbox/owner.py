"""Which process made something (a container, a temporary directory), and whether it is gone.

A token is `host:pid:start-ticks`: the start time (from /proc) tells a pid apart from a
later process that reuses the number. Reapers remove what a process that no longer runs
left behind, and never touch what another machine's process made.
"""

from __future__ import annotations

import os
import socket


def _start_ticks(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def owner_token() -> str:
    """This process, as `host:pid:start-ticks`."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid())}"


def owner_gone(token: str) -> bool:
    """Whether the process named by `token` ran on this host and no longer exists."""
    host, _, rest = token.partition(":")
    pid, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's: not ours to judge
    return _start_ticks(int(pid)) != ticks
