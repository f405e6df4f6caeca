"""The record of one solved query: every candidate step, the chosen path, and how it ended.

`Trajectory.to_json()` writes the reference release's layout (`q_id`, `query`, `instruction`,
`infer_path`, `exec_res`, `answer`; see `agent.reference_layout`) and our richer fields beside it.
Nodes are named as the reference names them (`codetool_kernel.nodepaths`): root `1`, first step `1-1`, `1-2`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field, model_validator

from codetool_kernel.nodepaths import STATUS_ERROR, STATUS_OK
from codetool_kernel.protocol import ApiCall

SCHEMA_VERSION = 2
"""2: nodes named from the root `1` (`1-1`, `1-2`); 1 named the first step's candidates `1`, `2`."""

StopReason = Literal["finished", "max_depth", "no_code", "error", "interrupted"]


class StepNode(BaseModel):
    """One candidate step: what the policy wrote, what running it did, how it was judged."""

    path: str
    """Path name: `1-2` is the second candidate of step 1 (the root, the query, is `1`)."""
    depth: int
    index: int
    """1-based position among its siblings."""
    parent: str | None = None
    """The parent step's path; None for a first-step candidate (its parent is the root)."""
    completion: str
    """The raw completion as sampled."""
    content: str
    """The step as fed back to the policy: kept text plus its `[Step k Finished]` marker."""
    title: str = ""
    code: str = ""
    finished: bool = False
    parse_notes: list[str] = Field(default_factory=list)
    stdout: str = ""
    error: str | None = None
    timed_out: bool = False
    status: int = STATUS_ERROR
    r_spot: float = 0.0
    r_lat: float | None = None
    rm_logits: list[float] | None = None
    reward: float = 0.0
    """The value the selector compared (e.g. r_spot + r_lat)."""
    cumulative_reward: float = 0.0
    chosen: bool = False
    is_leaf: bool = False
    api_calls: list[ApiCall] = Field(default_factory=list)
    exec_s: float = 0.0
    score_s: float = 0.0
    peak_memory_kb: int | None = None
    notes: list[str] = Field(default_factory=list)

    @property
    def ran(self) -> bool:
        return self.status == STATUS_OK

    @property
    def output(self) -> str:
        """What this step showed: its stdout, then its error line if it failed."""
        if not self.error:
            return self.stdout
        separator = "" if not self.stdout or self.stdout.endswith("\n") else "\n"
        return f"{self.stdout}{separator}Error: {self.error}"


class SamplingRecord(BaseModel):
    """One call for `n` candidates of a step."""

    parent: str | None
    depth: int
    n: int
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    requests: int


class Trajectory(BaseModel):
    """Everything about one query's solve."""

    schema_version: int = SCHEMA_VERSION
    q_id: int | str
    """The benchmark's own query id (an int for StableToolBench's `query_id`)."""
    query: str
    instruction: str
    toolset: str = ""
    model: str = ""
    mode: str = ""
    nodes: list[StepNode] = Field(default_factory=list)
    sampling: list[SamplingRecord] = Field(default_factory=list)
    chosen_path: list[str] = Field(default_factory=list)
    final_answer: str | None = None
    finished: bool = False
    stop_reason: StopReason | None = None
    error: str | None = None
    usage: dict[str, int] = Field(default_factory=dict)
    duration_s: float = 0.0
    notes: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def simulated_api_calls(self) -> int:
        """How many API answers of all explored steps a simulator made up (0: all data was real or recorded)."""
        return sum(call.simulated for node in self.nodes for call in node.api_calls)

    @property
    def query_id(self) -> str:
        """`q_id` as text (file names, tables)."""
        return str(self.q_id)

    def node(self, path: str) -> StepNode:
        for node in self.nodes:
            if node.path == path:
                return node
        raise KeyError(path)

    def chosen_nodes(self) -> list[StepNode]:
        return [self.node(path) for path in self.chosen_path]

    def ancestors(self, node: StepNode) -> list[StepNode]:
        """The steps above `node`, first step first."""
        chain: list[StepNode] = []
        parent = node.parent
        while parent is not None:
            chain.insert(0, self.node(parent))
            parent = chain[0].parent
        return chain

    @model_validator(mode="before")
    @classmethod
    def _read_older_files(cls, data: Any) -> Any:
        from agent.reference_layout import upgrade_trajectory_data

        return upgrade_trajectory_data(data)

    def to_json(self) -> dict[str, Any]:
        """JSON data in the reference layout, with our fields beside it."""
        from agent.reference_layout import reference_part

        return {**self.model_dump(mode="json"), **reference_part(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trajectory:
        """Read what `to_json` wrote, an older file of ours, or a trajectory of the reference release."""
        return cls.model_validate(data)


def replay_code(parents: Sequence[StepNode]) -> tuple[str, ...]:
    """Code of the chosen steps to replay: those that ran (a step that raised is not replayed)."""
    return tuple(node.code for node in parents if node.code and node.status != STATUS_ERROR)


def program_so_far(parents: Sequence[StepNode], node: StepNode) -> str:
    """The program that ran for `node`: its ancestors' replayed code, then its own (the reference's `code`)."""
    program = [*replay_code(parents), *([node.code] if node.code else [])]
    return "\n".join(code.rstrip("\n") for code in program)
