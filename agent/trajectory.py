"""The record of one solved query: every candidate step, the chosen path, and how it ended.

`Trajectory.to_json()` writes the reference release's layout (`q_id`, `query`,
`instruction`, `infer_path`, `exec_res`) and our richer fields beside it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from sandbox.protocol import ApiCall

SCHEMA_VERSION = 1

# Reference status codes of `exec_res[path]["status"]`.
STATUS_OK = 0
STATUS_ERROR = 1
STATUS_TOOL_FAILURE = 2

StopReason = Literal["finished", "max_depth", "no_code", "error", "interrupted"]


class StepNode(BaseModel):
    """One candidate step: what the policy wrote, what running it did, how it was judged."""

    path: str
    """Path name: `1-2` is the second child of the root's first child."""
    depth: int
    index: int
    """1-based position among its siblings."""
    parent: str | None = None
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
    q_id: str
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

    def node(self, path: str) -> StepNode:
        for node in self.nodes:
            if node.path == path:
                return node
        raise KeyError(path)

    def chosen_nodes(self) -> list[StepNode]:
        return [self.node(path) for path in self.chosen_path]

    def to_json(self) -> dict[str, Any]:
        """JSON data in the reference layout, with our fields beside it."""
        data = self.model_dump(mode="json")
        chosen = self.chosen_nodes()
        infer_path, exec_res = [], {}
        for position, node in enumerate(chosen):
            infer_path.append(
                {
                    "path_name": node.path,
                    "content": "".join(step.content for step in chosen[: position + 1]),
                    "is_leaf": node.is_leaf,
                }
            )
            exec_res[node.path] = {"code": node.code, "res": node.output, "status": node.status}
        data["infer_path"] = infer_path
        data["exec_res"] = exec_res
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trajectory:
        """Read what `to_json` wrote (the reference-layout keys are derived, so they are ignored)."""
        return cls.model_validate(data)
