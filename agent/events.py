"""Events a solve emits as it goes, for UIs and logs (`CodeToolAgent.stream`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.trajectory import StepNode, Trajectory


@dataclass(frozen=True)
class QueryStarted:
    query_id: str
    query: str
    toolset: str
    trajectory: Trajectory | None = field(default=None, repr=False, compare=False)
    """The trajectory being built (what a caller saves if the solve is interrupted)."""


@dataclass(frozen=True)
class CandidatesSampled:
    depth: int
    parent: str | None
    paths: tuple[str, ...]
    latency_s: float
    completion_tokens: int


@dataclass(frozen=True)
class CandidateExecuted:
    node: StepNode


@dataclass(frozen=True)
class CandidatesScored:
    depth: int
    nodes: tuple[StepNode, ...]


@dataclass(frozen=True)
class StepSelected:
    node: StepNode
    candidates: tuple[StepNode, ...]


@dataclass(frozen=True)
class QueryFinished:
    trajectory: Trajectory


Event = QueryStarted | CandidatesSampled | CandidateExecuted | CandidatesScored | StepSelected | QueryFinished
