"""Host-side value objects exchanged between a sandbox, its caller and the tool gateway.

These are the types that cross package boundaries: the agent builds a `Cell`, a sandbox
backend runs it and returns an `ExecutionResult`; while it runs, every HTTP call the code
makes becomes a `ToolRequest` handed to a `ToolHandler` (the tool gateway in practice),
which answers a `ToolResponse` and records an `ApiCall`.

The wire format between the host and the in-sandbox runner is in `sandbox.channel`; these types live in the
kernel so that `sandbox` and `tools` both speak them without importing each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JSONValue = Any


class Cell(BaseModel):
    """One execution: earlier chosen steps replayed silently, then `code` with its output kept."""

    model_config = ConfigDict(frozen=True)

    code: str
    replay: tuple[str, ...] = ()
    preset: Mapping[str, JSONValue] = Field(default_factory=dict)
    """Globals defined before any code runs (e.g. TMDB `headers`, with secrets masked)."""
    tags: Mapping[str, str] = Field(default_factory=dict)
    """Who asked: `run_id`, `query_id`, `node` (path name). Used by the audit log only."""


class SandboxLimits(BaseModel):
    """Bounds applied to every execution of a backend."""

    model_config = ConfigDict(frozen=True)

    timeout_s: float = Field(30.0, gt=0)
    memory_mb: int = Field(1024, gt=0)
    cpu_s: int = Field(30, gt=0)
    output_bytes: int = Field(64_000, gt=0)
    max_api_calls: int = Field(100, ge=0)


class ToolRequest(BaseModel):
    """An HTTP call made by sandboxed code through the `requests` shim."""

    model_config = ConfigDict(frozen=True)

    method: str
    url: str
    params: Mapping[str, JSONValue] | None = None
    headers: Mapping[str, str] | None = None
    json_body: JSONValue = None
    data: JSONValue = None
    timeout_s: float | None = None


class ApiCall(BaseModel):
    """The audit record of one tool call, as seen by the gateway."""

    method: str
    url: str
    params: Mapping[str, JSONValue] | None = None
    body: JSONValue = None
    status: int | None = None
    latency_s: float = 0.0
    memo_hit: bool = False
    error: str | None = None
    api_name: str | None = None
    """The tool set's name for the endpoint (e.g. `GET_search_person`), when it knows one."""
    simulated: bool = False
    """The answer was made up by a simulator (e.g. the virtual TMDB without a token), not real data."""


class ToolResponse(BaseModel):
    """What the sandboxed `requests` call receives back."""

    status: int
    headers: Mapping[str, str] = Field(default_factory=dict)
    body: str = ""
    error: str | None = None
    """Set when the call never reached an API (refused, unreachable): raised inside the sandbox."""
    call: ApiCall | None = None


ToolHandler = Callable[[ToolRequest], Awaitable[ToolResponse]]
"""Serves the sandbox's HTTP calls; `tools.ToolGateway.session(...)` returns one."""


class ExecutionResult(BaseModel):
    """The outcome of running one `Cell`."""

    ok: bool
    stdout: str = ""
    stderr: str = ""
    """What the code wrote to `sys.stderr` (bounded like stdout; never fed back to a model)."""
    error: str | None = None
    """One line: `ExceptionType: message` for code errors, or what the sandbox ended and why."""
    error_type: str | None = None
    traceback: str | None = None
    timed_out: bool = False
    stdout_truncated: bool = False
    duration_s: float = 0.0
    peak_memory_kb: int | None = None
    api_calls: list[ApiCall] = Field(default_factory=list)
    backend: str = ""
