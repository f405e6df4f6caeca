"""`agent run --repair`: set a corrupt `run.json` or audit database aside and rebuild it from the trajectories."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from agent.trajectory import Trajectory
from codetool_kernel.errors import DataError
from codetool_kernel.nodepaths import STATUS_OK
from sandbox.audit_store import AuditedApiCall, AuditRecord, AuditStore

RECOVERED_BACKEND = "recovered"
"""The backend named by audit records rebuilt from a trajectory (the original record was lost)."""


def set_aside(path: Path) -> Path:
    """Rename a corrupt file to `NAME.corrupt-TIMESTAMP` (kept for inspection); the new path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):  # SQLite's side files belong to the corrupt database
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    return target


def check_audit(path: Path) -> str | None:
    """Why the audit database at `path` cannot be used, or None (also when there is none yet)."""
    if not path.exists():
        return None
    try:
        AuditStore(path, create=True).close()
    except DataError as exc:
        return str(exc)
    return None


def rebuild_audit(path: Path, *, run_id: str, trajectories: Iterable[Trajectory]) -> int:
    """A new audit database at `path` with one record per executed step of `trajectories`; how many."""
    count = 0
    now = datetime.now(UTC).isoformat()
    with AuditStore(path, create=True) as store:
        for trajectory in trajectories:
            for node in trajectory.nodes:
                if not node.code:
                    continue
                store.insert(
                    AuditRecord(
                        run_id=run_id,
                        query_id=trajectory.q_id,
                        node=node.path,
                        backend=RECOVERED_BACKEND,
                        started_at=now,
                        code=node.code,
                        code_sha256=hashlib.sha256(node.code.encode("utf-8", errors="surrogatepass")).hexdigest(),
                        stdout=node.stdout,
                        status="ok" if node.status == STATUS_OK else ("timeout" if node.timed_out else "error"),
                        error=node.error,
                        duration_s=node.exec_s,
                        peak_memory_kb=node.peak_memory_kb,
                        api_call_count=len(node.api_calls),
                        api_calls=[
                            AuditedApiCall(seq=seq, **call.model_dump()) for seq, call in enumerate(node.api_calls, 1)
                        ],
                    )
                )
                count += 1
    return count
