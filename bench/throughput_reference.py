"""The reference design of `bench/throughput.py`: one query, one candidate, one PRM request, one interpreter at a time.

For each query, one after another, and each step: the `n` candidates are asked for one by one
(a completion request each), each is executed in a fresh `python -c` interpreter that first
replays the chosen steps before it (its requests go straight to the virtual API server), then
scored by its own PRM request; the best-scored candidate is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from openai import AsyncOpenAI

from agent.parsing import parse_step
from agent.prompts import build_instruction, build_messages, step_stop
from agent.runner import RunSettings, percentile, select_queries
from bench.throughput_servers import ModelServers
from rm.prompt import PriorStep
from tests.support.policies import STB_URL
from tools.registry import create_provider

_FEEDBACK_CHARS = 500
_EXEC_TIMEOUT_S = 30.0


async def _execute(program: str) -> tuple[str, float]:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", program, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), _EXEC_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        output = b"timed out"
    return output.decode(errors="replace")[-4000:], time.perf_counter() - started


async def run_reference(args: argparse.Namespace, servers: ModelServers, count: int) -> dict[str, Any]:
    """Solve the first `count` queries the reference way; per-stage latencies in ms."""
    settings = RunSettings(benchmark="stabletoolbench", data=args.data, groups=("G1_instruction",), filtered=True,
                           out=Path("unused"), limit=count)  # fmt: skip
    llm_s: list[float] = []
    exec_s: list[float] = []
    prm_s: list[float] = []
    async with create_provider("stabletoolbench") as provider:
        queries = await asyncio.to_thread(select_queries, settings)
        client = AsyncOpenAI(base_url=args.base_url or servers.llm_url, api_key=args.api_key, max_retries=2)
        prm_url = args.rm_url or servers.prm_url
        async with client, aiohttp.ClientSession() as http:
            for query in queries:
                toolset = provider.toolset_for(query)
                instruction = build_instruction(toolset.docs, toolset.usage_notes, _FEEDBACK_CHARS)
                history: list[PriorStep] = []
                chosen: list[str] = []
                for depth in range(1, args.steps + 1):
                    messages = build_messages(instruction, query.text, history, _FEEDBACK_CHARS)
                    best: tuple[float, Any, str] | None = None
                    for _ in range(args.n):
                        started = time.perf_counter()
                        reply = await client.chat.completions.create(
                            model=args.model, messages=messages, n=1, stop=[step_stop(depth)]  # type: ignore[arg-type]
                        )
                        llm_s.append(time.perf_counter() - started)
                        parsed = parse_step(reply.choices[0].message.content)
                        program = "\n".join([*chosen, parsed.code]).replace(STB_URL, provider.upstream_url)
                        output, took = await _execute(program)
                        exec_s.append(took)
                        started = time.perf_counter()
                        item = {"messages": [*messages, {"role": "assistant", "content": parsed.text + "\n" + output}]}
                        async with http.post(f"{prm_url}/score", json={"items": [item]}) as response:
                            score = float((await response.json())["scores"][0])
                        prm_s.append(time.perf_counter() - started)
                        if best is None or score > best[0]:
                            best = (score, parsed, output)
                    assert best is not None
                    _, parsed, output = best
                    chosen.append(parsed.code)
                    history.append(PriorStep(parsed.text, output))
                    if parsed.finished:
                        break
    return {"stages": {name: percentiles_ms(values) for name, values in (("llm", llm_s), ("sandbox", exec_s), ("prm", prm_s))}}


def percentiles_ms(values: list[float]) -> dict[str, float | int | None]:
    """p50, p90 and p99 of `values` (seconds) in milliseconds, and how many there were."""
    figures = {f"p{q}": percentile(values, q) for q in (50, 90, 99)}
    return {k: None if v is None else round(v * 1000, 1) for k, v in figures.items()} | {"count": len(values)}
