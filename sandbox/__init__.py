"""Running code cells in isolation: the `Sandbox` interface, its backends and their protocol.

`create_sandbox("restricted" | "process" | "docker", limits)` gives a backend;
`await sandbox.execute(cell, tools)` runs a `Cell` and returns an `ExecutionResult`,
sending the code's HTTP calls to `tools`; `async with sandbox.session(query_id) as session`
runs one query's executions (`session.execute`), on `docker` in one container of its own.
`AuditedSandbox` wraps any backend and records
every execution in the run's audit database.
"""

from codetool_kernel.protocol import ApiCall, Cell, ExecutionResult, SandboxLimits, ToolHandler, ToolRequest, ToolResponse
from sandbox.audit import AUDIT_DB_NAME, AuditedSandbox, AuditFilter, AuditRecord, AuditStore
from sandbox.base import Sandbox, SandboxSession, available_backends, create_sandbox, register_backend

__all__ = [
    "AUDIT_DB_NAME",
    "ApiCall",
    "AuditFilter",
    "AuditRecord",
    "AuditStore",
    "AuditedSandbox",
    "Cell",
    "ExecutionResult",
    "Sandbox",
    "SandboxLimits",
    "SandboxSession",
    "ToolHandler",
    "ToolRequest",
    "ToolResponse",
    "available_backends",
    "create_sandbox",
    "register_backend",
]
