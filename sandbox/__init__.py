"""Running code cells in isolation: the `Sandbox` interface, its backends and their protocol.

`create_sandbox("restricted", limits)` gives a backend; `await sandbox.execute(cell, tools)`
runs a `Cell` and returns an `ExecutionResult`, sending the code's HTTP calls to `tools`.
"""

from sandbox.base import Sandbox, available_backends, create_sandbox, register_backend
from sandbox.protocol import ApiCall, Cell, ExecutionResult, SandboxLimits, ToolHandler, ToolRequest, ToolResponse

__all__ = [
    "ApiCall",
    "Cell",
    "ExecutionResult",
    "Sandbox",
    "SandboxLimits",
    "ToolHandler",
    "ToolRequest",
    "ToolResponse",
    "available_backends",
    "create_sandbox",
    "register_backend",
]
