"""`python -m agent audit RUN_DIR [EXECUTION_ID]`: list, filter and show a run's sandbox executions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from codetool_kernel.errors import DataError
from codetool_kernel.files import to_json
from codetool_kernel.nodepaths import ROOT, is_node_name
from codetool_kernel.text import truncate
from sandbox.audit import AUDIT_DB_NAME, AuditFilter, AuditRecord, AuditStore

_ERROR_CHARS = 70
_STATUS_STYLE = {"ok": "green", "error": "red", "timeout": "yellow", "crash": "magenta", "sandbox_error": "magenta"}


def audit_command(
    run_dir: Annotated[Path, typer.Argument(help=f"Run directory holding {AUDIT_DB_NAME} (or the database file itself).")],
    execution_id: Annotated[int | None, typer.Argument(help="Show this execution in full.")] = None,
    query: Annotated[str | None, typer.Option("--query", help="Only this query id.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only executions that did not succeed.")] = False,
    node: Annotated[str | None, typer.Option("--node", help="Only this node and the nodes below it (e.g. 1-2: step 1's second candidate).")] = None,
    api: Annotated[str | None, typer.Option("--api", help="Only executions that called a URL containing this.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many executions.")] = None,
    all_attempts: Annotated[
        bool, typer.Option("--all-attempts", help="Also the executions of earlier, interrupted attempts of a query.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List a run's sandbox executions (filtered), or show one in full."""
    if node is not None and node != ROOT and not is_node_name(node):
        raise typer.BadParameter(f"{node!r} is not a node name: the root is 1, its children 1-1, 1-2, ...", param_hint="--node")
    path = run_dir if run_dir.is_file() else run_dir / AUDIT_DB_NAME
    try:
        opened = AuditStore(path)
    except DataError as exc:
        if not path.exists():
            raise
        raise DataError(f"{exc}; `python -m agent run ... --repair` on the run rebuilds it from the trajectories") from None
    with opened as store:
        if execution_id is not None:
            record = store.execution(execution_id)
            if record is None:
                raise DataError(f"{path}: no execution with id {execution_id}")
            _show(record, as_json)
            return
        records = store.executions(AuditFilter(query_id=query, node=node, failed=failed, api=api, latest_attempt=not all_attempts, limit=limit))
    if as_json:
        typer.echo(to_json([record.model_dump(mode="json") for record in records], indent=2))
    else:
        Console().print(_table(records, path))


def _table(records: list[AuditRecord], path: Path) -> Table:
    table = Table(title=f"{path} · {len(records)} executions", title_justify="left")
    for column, justify in (("id", "right"), ("started (UTC)", "left"), ("attempt", "right"), ("query", "left"), ("node", "left"), ("backend", "left"),
                            ("status", "left"), ("s", "right"), ("calls", "right"), ("error", "left")):  # fmt: skip
        table.add_column(column, justify=justify, no_wrap=column != "error", overflow="fold")
    for record in records:
        status = Text(record.status, style=_STATUS_STYLE.get(record.status, ""))
        table.add_row(
            str(record.id), record.started_at[:19].replace("T", " "), "-" if record.attempt is None else str(record.attempt), record.query_id or "-", record.node or "-", record.backend,
            status, f"{record.duration_s:.2f}", str(record.api_call_count), truncate(record.error or "", _ERROR_CHARS),
        )  # fmt: skip
    return table


def _show(record: AuditRecord, as_json: bool) -> None:
    if as_json:
        typer.echo(to_json(record.model_dump(mode="json"), indent=2))
        return
    memory = f"{record.peak_memory_kb} KiB" if record.peak_memory_kb is not None else "unknown"
    facts = Text.assemble(
        f"run {record.run_id or '-'} · attempt {record.attempt or '-'} · query {record.query_id or '-'} · node {record.node or '-'} · {record.backend}\n",
        f"started {record.started_at} · {record.duration_s:.3f} s · peak memory {memory} · writer pid {record.writer_pid}\n",
        "status ", (record.status, _STATUS_STYLE.get(record.status, "")), f" · code sha256 {record.code_sha256}",
    )  # fmt: skip
    parts: list[object] = [facts]
    if record.replay:
        parts.append(Panel(Syntax("\n\n".join(record.replay), "python", theme="ansi_dark"), title=f"replayed ({len(record.replay)} steps)"))
    parts.append(Panel(Syntax(record.code or "", "python", theme="ansi_dark"), title="code"))
    truncated = " (truncated)" if record.stdout_truncated else ""
    parts.append(Panel(Text(record.stdout or "(nothing)"), title=f"stdout{truncated}"))
    if record.stderr:
        parts.append(Panel(Text(record.stderr), title="stderr"))
    if record.error:
        parts.append(Panel(Text(record.traceback or record.error), title=record.error_type or "error", border_style="red"))
    if record.api_calls:
        calls = Table(title="API calls", title_justify="left")
        for column in ("#", "method", "url", "params / body", "status", "ms", "memo", "error"):
            calls.add_column(column, overflow="fold")
        for call in record.api_calls:
            sent = call.params if call.params is not None else call.body
            calls.add_row(
                str(call.seq), call.method, call.url, json.dumps(sent, ensure_ascii=False) if sent is not None else "",
                "-" if call.status is None else str(call.status), f"{call.latency_s * 1000:.1f}", "yes" if call.memo_hit else "",
                call.error or "",
            )  # fmt: skip
        parts.append(calls)
    Console().print(Panel(Group(*parts), title=f"execution {record.id}"))
