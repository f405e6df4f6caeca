"""The execution audit log's SQLite database: schema, one writer per process, readers.

One database per run (`RUN_DIR/audit.sqlite`), in WAL mode so that several processes of a
run (Ray workers, say) can write it at once while readers read; a writer waits up to
`timeout_s` for the lock. Every method here blocks: `AuditedSandbox` calls them from a
thread of its own, the `audit` command directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from codetool_kernel.errors import DataError
from codetool_kernel.files import to_json
from codetool_kernel.protocol import ApiCall

AUDIT_DB_NAME = "audit.sqlite"
"""File name of a run's audit database inside its run directory."""
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT, query_id TEXT, node TEXT, backend TEXT NOT NULL, started_at TEXT NOT NULL,
    code TEXT NOT NULL, code_sha256 TEXT NOT NULL, replay TEXT NOT NULL,
    stdout TEXT NOT NULL, stderr TEXT NOT NULL, stdout_truncated INTEGER NOT NULL,
    status TEXT NOT NULL, error TEXT, error_type TEXT, traceback TEXT,
    duration_s REAL NOT NULL, peak_memory_kb INTEGER, api_call_count INTEGER NOT NULL,
    writer_pid INTEGER NOT NULL, attempt INTEGER
);
CREATE INDEX IF NOT EXISTS executions_query ON executions (query_id, node);
CREATE TABLE IF NOT EXISTS api_calls (
    execution_id INTEGER NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, method TEXT NOT NULL, url TEXT NOT NULL, params TEXT, body TEXT, status INTEGER,
    latency_s REAL NOT NULL, memo_hit INTEGER NOT NULL, error TEXT, api_name TEXT,
    PRIMARY KEY (execution_id, seq)
);
"""
_EXECUTION_COLUMNS = (
    "run_id", "query_id", "node", "backend", "started_at", "code", "code_sha256", "replay", "stdout", "stderr",
    "stdout_truncated", "status", "error", "error_type", "traceback", "duration_s", "peak_memory_kb", "api_call_count",
    "writer_pid", "attempt",
)  # fmt: skip
_IDS_PER_QUERY = 500
_LOCKED_RETRY_S = 0.05
_CALL_COLUMNS = ("seq", "method", "url", "params", "body", "status", "latency_s", "memo_hit", "error", "api_name")
_JSON_CALL_COLUMNS = ("params", "body")


class AuditedApiCall(ApiCall):
    """One API call an execution made through the tool gateway, numbered in call order."""

    seq: int


class AuditRecord(BaseModel):
    """One execution as the audit log keeps it (`id` is None until it is stored)."""

    id: int | None = None
    run_id: str | None = None
    attempt: int | None = None
    """The session of the run that made this execution (1, 2, ... as in `run.json`); None outside runs."""
    query_id: str | None = None
    node: str | None = None
    backend: str
    started_at: str
    """UTC, ISO 8601."""
    code: str
    code_sha256: str
    replay: list[str] = Field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    status: str
    """`ok`, `error` (the code raised), `timeout`, `crash` (the sandbox process died), or
    `sandbox_error` (the infrastructure failed and the execution raised)."""
    error: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    duration_s: float = 0.0
    peak_memory_kb: int | None = None
    api_call_count: int = 0
    writer_pid: int = Field(default_factory=os.getpid)
    api_calls: list[AuditedApiCall] = Field(default_factory=list)


@dataclass(frozen=True)
class AuditFilter:
    """Which executions to list; every field left None matches all."""

    query_id: str | None = None
    node: str | None = None
    """This node and the nodes below it (`1-2` matches `1-2` and `1-2-1`)."""
    failed: bool = False
    api: str | None = None
    """Part of the URL of at least one API call."""
    run_id: str | None = None
    latest_attempt: bool = False
    """Per query, only the executions of its latest attempt (a killed attempt's are hidden)."""
    limit: int | None = None


def _connect(path: Path, timeout_s: float) -> sqlite3.Connection:
    try:
        connection = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA foreign_keys = ON")
    except sqlite3.Error as exc:
        raise DataError(f"{path}: cannot open the audit database ({exc})") from None
    return connection


class AuditStore:
    """An audit database, opened for writing (`create=True`) or reading."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = False, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_file():
            raise DataError(f"{self.path}: no audit log here (runs write one when `audit_db` is set)")
        self._connection = _connect(self.path, timeout_s)
        try:
            if create:
                self._use_wal(timeout_s)
                self._connection.execute("PRAGMA synchronous = NORMAL")
                with self._transaction():
                    for statement in _SCHEMA.split(";"):
                        self._connection.execute(statement)
                    if "attempt" not in self._columns():  # a database written before attempts were recorded
                        self._connection.execute("ALTER TABLE executions ADD COLUMN attempt INTEGER")
                    self._connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            else:
                self._connection.execute("SELECT 1 FROM executions LIMIT 1")
            self._select = ", ".join(
                column if column in self._columns() else f"NULL AS {column}" for column in _EXECUTION_COLUMNS
            )
        except sqlite3.Error as exc:
            self._connection.close()
            raise DataError(f"{self.path}: not an audit database ({exc})") from None

    def _columns(self) -> set[str]:
        return {row[1] for row in self._connection.execute("PRAGMA table_info(executions)")}

    def _use_wal(self, timeout_s: float) -> None:
        # switching a new database to WAL needs a moment alone with it, which the busy
        # handler does not always wait for when several processes create it at once
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(_LOCKED_RETRY_S)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE: take the write lock at once (waiting for it), commit or roll back."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def insert(self, record: AuditRecord) -> int:
        """Store one execution and its API calls in one transaction; returns its id."""
        row = record.model_dump(include=set(_EXECUTION_COLUMNS))
        row["replay"] = to_json(record.replay)
        columns = ", ".join(_EXECUTION_COLUMNS)
        with self._transaction():
            cursor = self._connection.execute(
                f"INSERT INTO executions ({columns}) VALUES ({', '.join('?' * len(_EXECUTION_COLUMNS))})",
                [row[column] for column in _EXECUTION_COLUMNS],
            )
            execution_id = int(cursor.lastrowid or 0)
            calls = []
            for call in record.api_calls:
                data = call.model_dump()
                data.update({column: _json_or_none(data[column]) for column in _JSON_CALL_COLUMNS})
                calls.append((execution_id, *(data[column] for column in _CALL_COLUMNS)))
            self._connection.executemany(
                f"INSERT INTO api_calls (execution_id, {', '.join(_CALL_COLUMNS)}) VALUES (?, {', '.join('?' * len(_CALL_COLUMNS))})",
                calls,
            )
        return execution_id

    def executions(self, where: AuditFilter = AuditFilter()) -> list[AuditRecord]:
        """The executions that match, oldest first, each with its API calls."""
        if where.latest_attempt and "attempt" not in self._columns():
            where = dataclasses.replace(where, latest_attempt=False)  # written before attempts were recorded
        clauses, arguments = _conditions(where)
        sql = f"SELECT id, {self._select} FROM executions"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id"
        if where.limit:
            sql += f" LIMIT {int(where.limit)}"
        return self._records(sql, arguments)

    def execution(self, execution_id: int) -> AuditRecord | None:
        """One execution in full, or None."""
        found = self._records(f"SELECT id, {self._select} FROM executions WHERE id = ?", [execution_id])
        return found[0] if found else None

    def _records(self, sql: str, arguments: Sequence[Any]) -> list[AuditRecord]:
        try:
            rows = self._connection.execute(sql, arguments).fetchall()
            calls = self._calls([row[0] for row in rows])
        except sqlite3.Error as exc:
            raise DataError(f"{self.path}: cannot read the audit database ({exc})") from None
        records = []
        for row in rows:
            data = dict(zip(("id", *_EXECUTION_COLUMNS), row, strict=True))
            data["replay"] = json.loads(data["replay"])
            records.append(AuditRecord(**data, api_calls=calls.get(data["id"], [])))
        return records

    def _calls(self, execution_ids: list[int]) -> dict[int, list[AuditedApiCall]]:
        found: dict[int, list[AuditedApiCall]] = {}
        for start in range(0, len(execution_ids), _IDS_PER_QUERY):
            chunk = execution_ids[start : start + _IDS_PER_QUERY]
            rows = self._connection.execute(
                f"SELECT execution_id, {', '.join(_CALL_COLUMNS)} FROM api_calls"
                f" WHERE execution_id IN ({', '.join('?' * len(chunk))}) ORDER BY execution_id, seq",
                chunk,
            )
            for execution_id, *values in rows:
                data = dict(zip(_CALL_COLUMNS, values, strict=True))
                data.update({column: json.loads(data[column]) for column in _JSON_CALL_COLUMNS if data[column] is not None})
                found.setdefault(execution_id, []).append(AuditedApiCall(**data))
        return found

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _json_or_none(value: Any) -> str | None:
    return None if value is None else to_json(value, default=str)


def _conditions(where: AuditFilter) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    arguments: list[Any] = []
    if where.run_id is not None:
        clauses.append("run_id = ?")
        arguments.append(where.run_id)
    if where.query_id is not None:
        clauses.append("query_id = ?")
        arguments.append(where.query_id)
    if where.node is not None:
        clauses.append("(node = ? OR substr(node, 1, ?) = ?)")
        arguments += [where.node, len(where.node) + 1, where.node + "-"]
    if where.failed:
        clauses.append("status != 'ok'")
    if where.latest_attempt:
        clauses.append(
            "(attempt IS NULL OR attempt = (SELECT MAX(e.attempt) FROM executions e"
            " WHERE e.query_id IS executions.query_id AND e.run_id IS executions.run_id))"
        )
    if where.api is not None:
        clauses.append("EXISTS (SELECT 1 FROM api_calls c WHERE c.execution_id = executions.id AND instr(c.url, ?) > 0)")
        arguments.append(where.api)
    return clauses, arguments
