"""Running figures of a benchmark run, computed from finished trajectories and failures."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.trajectory import Trajectory
from codetool_kernel.nodepaths import STATUS_OK


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def prm_latencies(trajectory: Trajectory) -> list[float]:
    """One PRM scoring latency per scored step (all candidates of a step share one request)."""
    by_parent: dict[tuple[int, str | None], float] = {}
    for node in trajectory.nodes:
        if node.r_lat is not None:
            by_parent[(node.depth, node.parent)] = node.score_s
    return list(by_parent.values())


@dataclass
class RunStats:
    """Counters and latency samples over the queries of a run."""

    total: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    done_here: int = 0
    """Finished in this session (the rate behind the ETA)."""
    failed: int = 0
    answered: int = 0
    steps: int = 0
    executed: int = 0
    executed_ok: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_latency_s: list[float] = field(default_factory=list)
    prm_latency_s: list[float] = field(default_factory=list)
    last_errors: list[str] = field(default_factory=list)

    def absorb(self, trajectory: Trajectory, *, earlier: bool = False) -> None:
        """Count a finished query (`earlier`: finished by a previous session of the run)."""
        self.done += 1
        if not earlier:
            self.done_here += 1
        self.answered += trajectory.final_answer is not None
        self.steps += len(trajectory.chosen_path)
        for node in trajectory.nodes:
            if node.code:
                self.executed += 1
                self.executed_ok += node.status == STATUS_OK
        self.prompt_tokens += trajectory.usage.get("prompt_tokens", 0)
        self.completion_tokens += trajectory.usage.get("completion_tokens", 0)
        self.llm_latency_s.extend(record.latency_s for record in trajectory.sampling)
        self.prm_latency_s.extend(prm_latencies(trajectory))

    def fail(self, query_id: str, error: str) -> None:
        self.failed += 1
        self.last_errors = [*self.last_errors[-2:], f"{query_id}: {error}"]

    @property
    def exec_success(self) -> float | None:
        return self.executed_ok / self.executed if self.executed else None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def eta_s(self) -> float | None:
        """Seconds left at this session's pace, None before the first query finishes."""
        if not self.done_here:
            return None
        remaining = max(0, self.total - self.done - self.failed)
        return remaining * (time.monotonic() - self.started) / self.done_here

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures for the manifest."""
        return {
            "queries": self.total,
            "finished": self.done,
            "failed": self.failed,
            "answered": self.answered,
            "steps": self.steps,
            "exec_success": self.exec_success,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.tokens,
            },
            "llm_latency_s": {f"p{q}": percentile(self.llm_latency_s, q) for q in (50, 90, 99)},
            "prm_latency_s": {f"p{q}": percentile(self.prm_latency_s, q) for q in (50, 90, 99)},
        }
