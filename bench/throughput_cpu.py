"""Where a run's CPU went: the whole machine's busy time, less the simulated model servers'.

On a machine that runs nothing else, what is left is ours (the driver, the sandboxes, the
docker engine for the docker backend), and `(ours) / cores` is the shortest the run could
have been even with model latency at zero: when it exceeds the ideal, the run is bound by
CPU, not by latency.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (`/proc/stat`: everything but idle and iowait)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / _TICKS


def tree_cpu_s(pid: int | None) -> float:
    """CPU seconds used so far by `pid` and its descendants (alive or reaped)."""
    if not pid:
        return 0.0
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + (times.children_user + times.children_system if process.pid == pid else 0.0)
    return total


class RunCpu:
    """`with RunCpu(servers_pid) as cpu:` ... then `cpu.figures(wall_s)`."""

    def __init__(self, servers_pid: int | None) -> None:
        self.servers_pid = servers_pid
        self.busy = self.servers = 0.0

    def __enter__(self) -> RunCpu:
        self.busy, self.servers = machine_busy_s(), tree_cpu_s(self.servers_pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.busy = machine_busy_s() - self.busy
        self.servers = tree_cpu_s(self.servers_pid) - self.servers

    def figures(self, wall_s: float) -> dict[str, Any]:
        """Busy CPU seconds of the machine, of the model servers, the rest, and that rest over the cores."""
        cores = os.cpu_count() or 1
        ours = max(0.0, self.busy - self.servers)
        return {"machine_busy_s": self.busy, "servers_s": self.servers, "ours_s": ours, "cores": cores,
                "cpu_floor_s": ours / cores, "machine_busy_fraction": self.busy / cores / wall_s if wall_s > 0 else None}  # fmt: skip
