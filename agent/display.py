"""Live rendering of solve events on a terminal (rich)."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

from agent.events import CandidateExecuted, CandidatesSampled, Event, QueryFinished, QueryStarted, StepSelected
from agent.trajectory import StepNode
from codetool_kernel.text import truncate

_OUTPUT_CHARS = 1200


class EventPrinter:
    """Prints each step as it happens: candidates, their code, output and rewards, the choice."""

    def __init__(self, console: Console, *, show_all_candidates: bool = False) -> None:
        self.console = console
        self.show_all_candidates = show_all_candidates

    def __call__(self, event: Event) -> None:
        if isinstance(event, QueryStarted):
            self.console.rule(f"[bold]{event.query_id}[/] · {event.toolset}")
            self.console.print(Text(event.query))
        elif isinstance(event, CandidatesSampled):
            self.console.print(
                f"[dim]step {event.depth}: {len(event.paths)} candidates sampled in {event.latency_s:.1f}s "
                f"({event.completion_tokens} tokens)[/]"
            )
        elif isinstance(event, CandidateExecuted) and self.show_all_candidates:
            self.console.print(self._panel(event.node, chosen=False))
        elif isinstance(event, StepSelected):
            others = ", ".join(f"{node.path}={_rewards(node)}" for node in event.candidates)
            self.console.print(self._panel(event.node, chosen=True))
            self.console.print(f"[dim]rewards: {others}[/]")
        elif isinstance(event, QueryFinished):
            trajectory = event.trajectory
            self.console.rule(f"{trajectory.stop_reason} after {len(trajectory.chosen_path)} steps")
            answer = trajectory.final_answer or "(no final answer: the policy did not finish)"
            self.console.print(Panel(Text(answer), title="final answer", border_style="green"))
            if trajectory.simulated_api_calls:
                self.console.print(
                    f"[yellow]⚠ {trajectory.simulated_api_calls} API answers in this run were simulated "
                    "(no real API behind them): the answer may rest on made-up data.[/]"
                )

    def _panel(self, node: StepNode, *, chosen: bool) -> Panel:
        parts: list[object] = []
        if node.code:
            parts.append(Syntax(node.code.rstrip(), "python", theme="ansi_dark", line_numbers=False))
        else:
            parts.append(Text(node.content.strip() or "(empty completion)", style="italic"))
        output = truncate(node.output, _OUTPUT_CHARS)
        if output:
            parts.append(Text(output, style="red" if node.status else ""))
        simulated = sum(call.simulated for call in node.api_calls)
        if simulated:
            parts.append(Text(f"⚠ {simulated} of {len(node.api_calls)} API answers were simulated, not real data", style="yellow"))
        title = f"{'✔ ' if chosen else ''}step {node.depth} · {node.path} · {node.title or 'untitled'}"
        return Panel(Group(*parts), title=title, subtitle=_rewards(node), border_style="cyan" if chosen else "dim")


def _rewards(node: StepNode) -> str:
    latent = "" if node.r_lat is None else f" r_lat={node.r_lat:.3f}"
    return f"r_spot={node.r_spot:g}{latent}"
