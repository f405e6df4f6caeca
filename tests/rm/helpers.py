"""Shared pieces of the rm tests: sample conversations and a real server on loopback."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from rm import (
    BatchingConfig,
    PriorStep,
    RewardModelServer,
    Scorer,
    ScorerConfig,
    ServerConfig,
    build_prm_messages,
    create_scorer,
)
from rm.scores import Conversation

REPO = Path(__file__).resolve().parents[2]

CANDIDATES = [
    "##Step 1: find the movie\n```python\nr = requests.get(f'{base}/search/movie', params={'query': 'Titanic'})\nprint(r.json())\n```",
    "##Step 1: guess\n```python\nprint('the answer is 42')\n```",
    "##Step 2: read the cast\n```python\ncast = requests.get(f'{base}/movie/597/credits').json()['cast']\n```",
    "no code at all, just words",
    "```python\nimport json\nprint(json.dumps({'a': 1}))\n```",
]


def conversations(count: int = len(CANDIDATES), *, with_history: bool = True) -> list[Conversation]:
    previous = [PriorStep(content="##Step 1: search\n```python\nprint(1)\n```", output="1\n")] if with_history else []
    return [
        build_prm_messages(
            api_docs="GET /search/movie?query=... returns matching movies",
            query="Who directed Titanic?",
            previous=previous,
            candidate=CANDIDATES[i % len(CANDIDATES)] + f"\n# variant {i // len(CANDIDATES)}",
        )
        for i in range(count)
    ]


def hf_config(model_dir: Path, **batching: float) -> ScorerConfig:
    return ScorerConfig(model=str(model_dir), batching=BatchingConfig(**batching))


@asynccontextmanager
async def running_server(
    backend: str, scorer_config: ScorerConfig, server_config: ServerConfig | None = None
) -> AsyncIterator[tuple[str, Scorer]]:
    """A started scorer behind a real aiohttp server on a free loopback port: yields (url, scorer)."""
    async with create_scorer(backend, scorer_config) as scorer:
        async with RewardModelServer(scorer, server_config or ServerConfig(port=0), model="tiny") as server:
            yield server.url, scorer


def error_without_module(module: str, backend: str, model: Path) -> str:
    """Start `backend` in a fresh interpreter where `module` cannot be imported; return what it raised."""
    script = (
        "import asyncio, sys\n"
        f"sys.modules[{module!r}] = None  # as if it were not installed\n"
        "from rm import ScorerConfig, create_scorer\n"
        "async def main():\n"
        f"    async with create_scorer({backend!r}, ScorerConfig(model={str(model)!r})): pass\n"
        "try:\n"
        "    asyncio.run(main())\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    return done.stdout.strip()


async def spawn_rm(*args: str) -> asyncio.subprocess.Process:
    """`python -m rm ARGS` from the repo root, offline, with stdout and stderr piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rm", *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip


@asynccontextmanager
async def rm_server_process(*args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`python -m rm serve ARGS` (pass `--port 0`): yields the process and the URL it printed; kills it after."""
    process = await spawn_rm("serve", *args)
    assert process.stdout is not None and process.stderr is not None
    # Drain stderr all along (a full pipe would stall the server), keeping its tail for error messages.
    stderr_tail = bytearray()
    drain = asyncio.ensure_future(_drain(process.stderr, stderr_tail))
    try:
        async with asyncio.timeout(180):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            await asyncio.wait_for(drain, 30)
            raise RuntimeError(f"the rm server did not start: {stderr_tail.decode(errors='replace')}")
        yield process, match.group(1)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        drain.cancel()


async def _drain(stream: asyncio.StreamReader, tail: bytearray, keep: int = 4000) -> None:
    while chunk := await stream.read(65536):
        tail.extend(chunk)
        del tail[:-keep]
