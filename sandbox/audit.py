"""The execution audit log: `AuditedSandbox` records every execution of the backend it wraps.

Each execution becomes one row in the run's SQLite database (`sandbox.audit_store`) and,
when a JSON-lines path is given, one structlog JSON line: run, query and node (from the
cell's tags), backend, code and its sha256, stdout/stderr (capped), status, error,
duration, peak memory, and every API call made through the gateway. Writes go through
one thread of the wrapper's own, so the event loop never waits on the disk; the result is
returned unchanged. A record that cannot be written is logged as an error and counted in
`write_failures`; the execution itself is not failed for it.

Where the records go is an `AuditWriter`: by default an `AuditLog` (the database and its
JSON-lines mirror); a Ray worker passes one that relays them to the driver instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Protocol

import structlog

from codetool_kernel.errors import CodeToolError, SandboxError
from codetool_kernel.protocol import Cell, ExecutionResult, ToolHandler
from codetool_kernel.text import truncate
from sandbox.audit_store import AUDIT_DB_NAME, AuditedApiCall, AuditFilter, AuditRecord, AuditStore
from sandbox.base import Sandbox, SandboxSession

AUDIT_OUTPUT_CHARS = 64_000
"""stdout, stderr and traceback are stored up to this many characters each."""
JSONL_EVENT = "sandbox.execution"

log = structlog.get_logger(__name__)

__all__ = [
    "AUDIT_DB_NAME", "AuditFilter", "AuditLog", "AuditRecord", "AuditStore", "AuditWriter", "AuditedApiCall",
    "AuditedSandbox", "audit_record",
]  # fmt: skip


class _AppendOnlyLines:
    """A structlog logger that appends each rendered line with a single write (O_APPEND)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def msg(self, message: str) -> None:
        os.write(self._fd, message.encode("utf-8") + b"\n")

    info = msg

    def close(self) -> None:
        os.close(self._fd)


def _status(result: ExecutionResult) -> str:
    if result.ok:
        return "ok"
    if result.timed_out:
        return "timeout"
    return "crash" if result.error_type == "SandboxCrash" else "error"


def audit_record(
    cell: Cell, result: ExecutionResult, *, run_id: str | None, started: datetime, attempt: int | None = None
) -> AuditRecord:
    """The audit record of one execution (`run_id` is used when the cell's tags have none)."""
    return AuditRecord(
        run_id=cell.tags.get("run_id") or run_id,
        attempt=attempt,
        query_id=cell.tags.get("query_id"),
        node=cell.tags.get("node"),
        backend=result.backend,
        started_at=started.isoformat(),
        code=cell.code,
        code_sha256=hashlib.sha256(cell.code.encode("utf-8", errors="surrogatepass")).hexdigest(),
        replay=list(cell.replay),
        stdout=truncate(result.stdout, AUDIT_OUTPUT_CHARS),
        stderr=truncate(result.stderr, AUDIT_OUTPUT_CHARS),
        stdout_truncated=result.stdout_truncated,
        status=_status(result),
        error=result.error,
        error_type=result.error_type,
        traceback=truncate(result.traceback, AUDIT_OUTPUT_CHARS) if result.traceback else None,
        duration_s=result.duration_s,
        peak_memory_kb=result.peak_memory_kb,
        api_call_count=len(result.api_calls),
        api_calls=[AuditedApiCall(seq=seq, **call.model_dump()) for seq, call in enumerate(result.api_calls, 1)],
    )


class AuditWriter(Protocol):
    """Where an audited sandbox's records go; each method blocks (the sandbox calls it from its own thread)."""

    def open(self) -> None: ...

    def write(self, record: AuditRecord) -> None:
        """Keep `record`; an `OSError`, `CodeToolError` or `ValueError` counts as a write failure."""

    def close(self) -> None: ...


class AuditLog:
    """The audit database at `db_path` (created if missing) and, with `jsonl_path`, its JSON-lines mirror."""

    def __init__(self, db_path: str | os.PathLike[str], jsonl_path: str | os.PathLike[str] | None = None) -> None:
        self.db_path = db_path
        self.jsonl_path = jsonl_path
        self._store: AuditStore | None = None
        self._lines: _AppendOnlyLines | None = None
        self._jsonl: Any = None

    def open(self) -> None:
        if self._store is not None:
            return
        self._store = AuditStore(self.db_path, create=True)
        if self.jsonl_path is not None:
            self._lines = _AppendOnlyLines(self.jsonl_path)
            self._jsonl = structlog.wrap_logger(
                self._lines,
                processors=[structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.processors.JSONRenderer(ensure_ascii=False)],
                wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
            )

    def write(self, record: AuditRecord) -> None:
        if self._store is None:
            raise SandboxError("the audit log is not open")
        try:
            execution_id = self._store.insert(record)
        except sqlite3.Error as exc:
            raise OSError(f"sqlite: {exc}") from None
        if self._jsonl is not None:
            self._jsonl.info(JSONL_EVENT, **record.model_copy(update={"id": execution_id}).model_dump(mode="json"))

    def close(self) -> None:
        store, self._store = self._store, None
        lines, self._lines = self._lines, None
        if store is not None:
            store.close()
        if lines is not None:
            lines.close()


class AuditedSandbox(Sandbox):
    """A `Sandbox` that owns `inner` (starts and closes it) and audits each of its executions.

    Records go to `writer`, or else to an `AuditLog` of `db_path` and `jsonl_path`.
    """

    name = "audited"

    def __init__(
        self,
        inner: Sandbox,
        db_path: str | os.PathLike[str] | None = None,
        *,
        run_id: str | None = None,
        jsonl_path: str | os.PathLike[str] | None = None,
        attempt: int | None = None,
        writer: AuditWriter | None = None,
    ) -> None:
        super().__init__(inner.limits)
        self.attempt = attempt
        """The session of the run these executions belong to (`agent audit` shows the latest by default)."""
        self.inner = inner
        if writer is None:
            if db_path is None:
                raise SandboxError("an audited sandbox needs a database path or a writer")
            writer = AuditLog(db_path, jsonl_path)
        self.writer = writer
        self.db_path = db_path
        self.run_id = run_id
        self.write_failures = 0
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codetool-audit")
        self._opened = False

    async def start(self) -> None:
        if not self._opened:
            await self._in_thread(self.writer.open)
            self._opened = True
        await self.inner.start()

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self._in_thread(self._close)
            self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._opened:
            self._opened = False
            self.writer.close()

    async def execute(self, cell: Cell, tools: ToolHandler | None = None) -> ExecutionResult:
        return await self.audit_execution(self.inner, cell, tools)

    @contextlib.asynccontextmanager
    async def session(self, key: str) -> AsyncIterator[SandboxSession]:
        """The inner backend's session for one query, each of its executions audited."""
        async with self.inner.session(key) as inner:
            yield _AuditedSession(self, inner)

    async def audit_execution(self, runner: SandboxSession, cell: Cell, tools: ToolHandler | None) -> ExecutionResult:
        """Run `cell` on `runner` (the inner backend or one of its sessions) and record it."""
        started = datetime.now(timezone.utc)
        try:
            result = await runner.execute(cell, tools)
        except CodeToolError as exc:
            kind = type(exc).__name__
            failed = ExecutionResult(ok=False, error=f"{kind}: {exc}", error_type=kind, backend=self.inner.name)
            await self._record(audit_record(cell, failed, run_id=self.run_id, started=started, attempt=self.attempt).model_copy(update={"status": "sandbox_error"}))
            raise
        await self._record(audit_record(cell, result, run_id=self.run_id, started=started, attempt=self.attempt))
        return result

    async def _record(self, record: AuditRecord) -> None:
        try:
            await self._in_thread(self._write, record)
        except (OSError, CodeToolError, ValueError) as exc:
            self.write_failures += 1
            log.error("cannot write the execution audit log", path=str(self.db_path), error=str(exc))

    def _write(self, record: AuditRecord) -> None:
        if not self._opened:
            raise SandboxError("the audited sandbox is not started")
        self.writer.write(record)

    async def _in_thread(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, function, *args)


class _AuditedSession:
    """One query's session of the inner backend, each execution recorded like `AuditedSandbox.execute`'s."""

    def __init__(self, audited: AuditedSandbox, inner: SandboxSession) -> None:
        self._sandbox = audited
        self._inner = inner

    async def execute(self, cell: Cell, tools: ToolHandler | None = None) -> ExecutionResult:
        return await self._sandbox.audit_execution(self._inner, cell, tools)
