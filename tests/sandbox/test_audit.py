"""The execution audit log: what `AuditedSandbox` records, concurrent writers, and reading it back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from codetool_kernel.errors import DataError, SandboxError
from sandbox import (
    AUDIT_DB_NAME,
    ApiCall,
    AuditedSandbox,
    AuditFilter,
    AuditStore,
    Cell,
    ToolRequest,
    ToolResponse,
    create_sandbox,
)
from sandbox.audit import AuditLog, AuditRecord

from .conftest import TEST_LIMITS, open_sandbox_options
from .tool_handlers import RecordingHandler, json_response

API = "https://api.example.test"
REPO = Path(__file__).resolve().parents[2]


def _memo_handler() -> RecordingHandler:
    def answer(request: ToolRequest) -> ToolResponse:
        call = ApiCall(
            method=request.method, url=request.url, params=request.params, body=request.json_body,
            status=200, latency_s=0.25, memo_hit=True, api_name="search",
        )  # fmt: skip
        return json_response({"ok": True}).model_copy(update={"call": call})

    return RecordingHandler(default=answer)


async def test_every_execution_is_recorded_and_the_result_is_unchanged(tmp_path: Path, backend: str) -> None:
    db, jsonl = tmp_path / "run" / AUDIT_DB_NAME, tmp_path / "run" / "audit.jsonl"
    inner = create_sandbox(backend, TEST_LIMITS, **open_sandbox_options(backend, pool_size=1))
    code = (
        f"import requests\nprint(requests.get('{API}/search', params={{'q': 'alien'}}).json())\n"
        f"requests.post('{API}/virtual', json={{'tool_input': {{'id': 7}}}})\n"
    )
    async with AuditedSandbox(inner, db, run_id="run-7", jsonl_path=jsonl) as audited:
        first = await audited.execute(Cell(code=code, replay=("x = 1",), tags={"query_id": "q1", "node": "1-2"}), _memo_handler())
        second = await audited.execute(Cell(code="print('partial')\n1 / 0", tags={"query_id": "q1", "node": "1-2-1"}))
    assert first.ok and first.stdout == "{'ok': True}\n" and first.backend == backend
    with AuditStore(db) as store:
        ok, failed = store.executions()
    assert (ok.run_id, ok.query_id, ok.node, ok.backend, ok.status) == ("run-7", "q1", "1-2", backend, "ok")
    assert ok.code == code and ok.code_sha256 == hashlib.sha256(code.encode()).hexdigest() and ok.replay == ["x = 1"]
    assert ok.stdout == first.stdout and ok.duration_s == first.duration_s and ok.peak_memory_kb == first.peak_memory_kb
    call, post = ok.api_calls
    assert (call.seq, call.method, call.url, call.params, call.status, call.latency_s, call.memo_hit, call.api_name) == (
        1, "GET", f"{API}/search", {"q": "alien"}, 200, 0.25, True, "search",
    )  # fmt: skip
    assert (post.seq, post.method, post.body) == (2, "POST", {"tool_input": {"id": 7}})
    assert (failed.status, failed.error, failed.error_type, failed.stdout) == ("error", second.error, "ZeroDivisionError", "partial\n")
    assert "1 / 0" in failed.traceback
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["sandbox.execution"] * 2
    assert [(line["id"], line["node"], line["status"]) for line in lines] == [(ok.id, "1-2", "ok"), (failed.id, "1-2-1", "error")]
    assert lines[0]["api_calls"][0]["memo_hit"] is True and "timestamp" in lines[0]


async def test_timeouts_and_infrastructure_errors_are_recorded(tmp_path: Path) -> None:
    db = tmp_path / AUDIT_DB_NAME
    async with AuditedSandbox(create_sandbox("restricted", TEST_LIMITS.model_copy(update={"timeout_s": 0.5}), pool_size=1), db) as audited:
        await audited.execute(Cell(code="while True:\n    pass\n", tags={"run_id": "from-tags"}))
        with pytest.raises(SandboxError, match="not valid JSON"):
            await audited.execute(Cell(code="print(1)", preset={"when": object()}))
    with AuditStore(db) as store:
        timeout, broken = store.executions()
    assert (timeout.status, timeout.run_id) == ("timeout", "from-tags")
    assert broken.status == "sandbox_error" and "not valid JSON" in broken.error


def _seed(store: AuditStore) -> None:
    from sandbox.audit_store import AuditedApiCall, AuditRecord

    def record(query: str, node: str, status: str, urls: tuple[str, ...] = ()) -> AuditRecord:
        calls = [AuditedApiCall(seq=i, method="GET", url=url) for i, url in enumerate(urls, 1)]
        return AuditRecord(query_id=query, node=node, backend="process", started_at="2024-01-01T00:00:00+00:00", code="pass",
                           code_sha256="0" * 64, status=status, api_calls=calls, api_call_count=len(calls))  # fmt: skip

    for item in (
        record("q1", "1", "ok", (f"{API}/search/person",)),
        record("q1", "1-2", "error"),
        record("q1", "1-20", "timeout", (f"{API}/movie/1", f"{API}/search/movie")),
        record("q2", "1-2-1", "ok"),
    ):
        store.insert(item)


def test_filters(tmp_path: Path) -> None:
    store = AuditStore(tmp_path / AUDIT_DB_NAME, create=True)
    try:
        _seed(store)

        def ids(**where: object) -> list[int]:
            return [r.id for r in store.executions(AuditFilter(**where))]

        assert ids() == [1, 2, 3, 4]
        assert ids(query_id="q1") == [1, 2, 3]
        assert ids(failed=True) == [2, 3]
        assert ids(node="1-2") == [2, 4]  # 1-2 and below it, not 1-20
        assert ids(api="/search/") == [1, 3]
        assert ids(api="/search/", query_id="q1", failed=True) == [3]
        assert ids(limit=2) == [1, 2]
        assert [call.url for call in store.execution(3).api_calls] == [f"{API}/movie/1", f"{API}/search/movie"]
        assert store.execution(99) is None
    finally:
        store.close()


WRITER = """
import asyncio, sys
from sandbox import AuditedSandbox, Cell, create_sandbox

async def main(db, tag, count):
    async with AuditedSandbox(create_sandbox('restricted', pool_size=2), db, run_id='shared') as audited:
        await asyncio.gather(*(audited.execute(Cell(code=f'print({i})', tags={'query_id': tag, 'node': str(i)})) for i in range(count)))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_several_processes_write_one_database(tmp_path: Path) -> None:
    db = tmp_path / AUDIT_DB_NAME
    writers = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, str(db), f"w{n}", "15", cwd=REPO, stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for writer in writers:
        _, stderr = await asyncio.wait_for(writer.communicate(), 120)
        assert writer.returncode == 0, stderr.decode()[-2000:]
    with AuditStore(db) as store:
        records = store.executions()
    assert len(records) == 60 and len({r.id for r in records}) == 60
    assert {(r.query_id, r.stdout) for r in records} == {(f"w{n}", f"{i}\n") for n in range(4) for i in range(15)}
    assert len({r.writer_pid for r in records}) == 4
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_reading_a_missing_or_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no audit log here"):
        AuditStore(tmp_path / AUDIT_DB_NAME)
    (tmp_path / "other.sqlite").write_bytes(b"not a database at all, just text" * 10)
    with pytest.raises(DataError, match="not an audit database"):
        AuditStore(tmp_path / "other.sqlite")


async def test_a_querys_session_is_audited_like_execute(tmp_path: Path, backend: str) -> None:
    db = tmp_path / AUDIT_DB_NAME
    inner = create_sandbox(backend, TEST_LIMITS, **open_sandbox_options(backend, pool_size=2))
    async with AuditedSandbox(inner, db, run_id="run-s") as audited, audited.session("q9") as session:
        results = await asyncio.gather(
            *(session.execute(Cell(code=f"print({i})", tags={"query_id": "q9", "node": f"1-{i}"})) for i in (1, 2))
        )
    assert [r.stdout for r in results] == ["1\n", "2\n"] and {r.backend for r in results} == {backend}
    with AuditStore(db) as store:
        recorded = store.executions()
    assert sorted((e.query_id, e.node, e.status, e.stdout) for e in recorded) == [("q9", "1-1", "ok", "1\n"), ("q9", "1-2", "ok", "2\n")]


class _RefusingLog(AuditLog):
    """The real audit log, refusing the records of one node (a disk error for that one write)."""

    def write(self, record: AuditRecord) -> None:
        if record.node == "refused":
            raise OSError("disk full")
        super().write(record)


async def test_concurrent_executions_each_return_after_their_own_record_is_written(tmp_path: Path) -> None:
    db = tmp_path / AUDIT_DB_NAME
    inner = create_sandbox("restricted", TEST_LIMITS, **open_sandbox_options("restricted", pool_size=4))
    nodes = [f"n{i}" for i in range(12)] + ["refused"]
    async with AuditedSandbox(inner, writer=_RefusingLog(db), run_id="r") as audited:

        async def run(node: str) -> set[str]:
            result = await audited.execute(Cell(code=f"print('{node}')", tags={"query_id": "q", "node": node}))
            assert result.ok and result.stdout == f"{node}\n"
            with AuditStore(db) as store:
                return {record.node for record in store.executions()}

        seen = await asyncio.gather(*(run(node) for node in nodes))
        failures = audited.write_failures
    for node, recorded in zip(nodes, seen, strict=True):
        assert (node in recorded) == (node != "refused")
    with AuditStore(db) as store:
        assert sorted(record.node for record in store.executions()) == sorted(nodes[:-1])
    assert failures == 1
