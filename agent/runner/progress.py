"""The live progress display of a run: a refreshing panel on a terminal, one line per query elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table

from agent.runner.stats import RunStats, percentile
from agent.trajectory import Trajectory

CostOf = Callable[[dict[str, int]], float | None]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 3600:
        return f"{value / 3600:.1f}h"
    if value >= 60:
        return f"{value / 60:.1f}m"
    return f"{value:.2f}s"


def _percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    return " / ".join(_seconds(percentile(values, q)) for q in (50, 90, 99))


class RunProgress(AbstractContextManager["RunProgress"]):
    """Shows `stats` as queries finish; `live=False` prints a line per query instead (logs, pipes)."""

    def __init__(self, stats: RunStats, console: Console, *, live: bool, cost_of: CostOf) -> None:
        self.stats = stats
        self.console = console
        self.cost_of = cost_of
        self._live = Live(self, console=console, refresh_per_second=2, transient=False) if live else None

    def __enter__(self) -> RunProgress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.stop()

    def finished(self, trajectory: Trajectory) -> None:
        self.stats.absorb(trajectory)
        if self._live is None:
            outcome = "answered" if trajectory.final_answer is not None else trajectory.stop_reason
            self._line(f"{trajectory.q_id} {outcome} after {len(trajectory.chosen_path)} steps")

    def failed(self, query_id: str, error: str) -> None:
        self.stats.fail(query_id, error)
        if self._live is None:
            self._line(f"{query_id} FAILED: {error}")

    def _line(self, text: str) -> None:
        stats = self.stats
        self.console.print(f"[{stats.done + stats.failed}/{stats.total}] {text}", highlight=False, soft_wrap=True)

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.stats.prompt_tokens, "completion_tokens": self.stats.completion_tokens}

    def __rich__(self) -> Table:
        stats = self.stats
        table = Table(title="CodeTool run", show_header=False, expand=False)
        table.add_column(style="bold")
        table.add_column()
        cost = self.cost_of(self.usage())
        exec_rate = "-" if stats.exec_success is None else f"{stats.exec_success:.1%}"
        rows = [
            ("done", f"{stats.done}/{stats.total}  (failed {stats.failed})"),
            ("answered", str(stats.answered)),
            ("steps", str(stats.steps)),
            ("exec success", exec_rate),
            ("tokens", f"{stats.tokens:,}" + ("" if cost is None else f"  (cost {cost:.4f})")),
            ("LLM latency p50/p90/p99", _percentiles(stats.llm_latency_s)),
            ("PRM latency p50/p90/p99", _percentiles(stats.prm_latency_s)),
            ("ETA", _seconds(stats.eta_s())),
        ]
        for name, value in rows:
            table.add_row(name, value)
        for error in stats.last_errors:
            table.add_row("[red]error[/]", error)
        return table
