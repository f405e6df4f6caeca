"""Running CodeTool's commands as real subprocesses from async tests."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


async def start(module: str, *args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """`python -m module args...` from the repository root, with its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        cwd=REPO, env={**os.environ, "OPENAI_API_KEY": "test", **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finish(process: asyncio.subprocess.Process, timeout: float = 180) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def run(module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> tuple[int, str, str]:
    return await finish(await start(module, *args, env=env), timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


def strict_json(path: Path) -> Any:
    """Read `path` as a strict JSON reader would: NaN and Infinity are refused."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{path} holds {name}, which is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)
