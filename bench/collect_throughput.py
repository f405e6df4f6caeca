"""Tree collection throughput: `agent collect`'s concurrent expansion against a one-node-at-a-time baseline.

Method
------
StableToolBench G1 queries are expanded into full step trees (n=2, depth 3: 10 nodes and 5 policy
calls per query) against the stand-in OpenAI server of `tests/support`, with the real restricted
sandbox, tool gateway and embedded virtual API server. The stand-in answers with the scripted tree
policy of `tests/rm_data` after a fixed delay per call (`--latency`, standing in for generation time;
each call holds a thread, so the stub serves up to 64 calls at once).

- *baseline*: the reference release's order: one query after another, one node after another
  (depth first); a node's candidates still run concurrently in the sandbox;
- *collect*: `TreeCollector` as `agent collect` runs it: every node of a level expanded at once, and
  `--concurrency` queries in flight.

Both expand the same queries with the same policy. Rounds alternate baseline / collect (so a load
change on a shared machine hits both alike); each figure is the median over rounds of nodes per
second. The ratio is collect / baseline, measured in this same run.

Run: `python bench/collect_throughput.py [--queries 8] [--concurrency 4] [--latency 0.2] [--rounds 3]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # a script, not a package: make `rm` and `tests` importable

from agent.collect import TreeCollector  # noqa: E402
from agent.expansion import QueryRun, StepExpander  # noqa: E402
from agent.llm import LLMClient  # noqa: E402
from agent.prompts import build_instruction  # noqa: E402
from agent.trajectory import StepNode, Trajectory  # noqa: E402
from codetool_kernel.logging import configure_logging  # noqa: E402
from sandbox.base import Sandbox, create_sandbox  # noqa: E402
from tests.agent.conftest import agent_config  # noqa: E402
from tests.rm_data.tree_policy import tree_policy  # noqa: E402
from tests.support.openai_stub import OpenAIStub  # noqa: E402
from tools import ToolGateway, create_provider  # noqa: E402
from tools.toolset import Query, ToolProvider  # noqa: E402

QUERY_FILE = REPO.parent / "shared" / "data" / "stabletoolbench" / "filter_test_instruction" / "G1_instruction.json"


async def baseline(expander: StepExpander, sandbox: Sandbox, provider: ToolProvider, queries: list[Query]) -> int:
    """Depth-first, one node at a time, one query at a time; returns the nodes expanded."""
    nodes = 0
    async with ToolGateway() as gateway:
        for query in queries:
            toolset = provider.toolset_for(query)
            instruction = build_instruction(toolset.docs, toolset.usage_notes, expander.search.feedback_chars)
            run = QueryRun(
                run_id="baseline", query=query, toolset=toolset, instruction=instruction,
                tools=gateway.session(toolset, query.query_id), emit=_ignore, sandbox=sandbox,
                trajectory=Trajectory(q_id=query.query_id, query=query.text, instruction=instruction),
            )  # fmt: skip
            stack: list[list[StepNode]] = [[]]
            while stack:
                chain = stack.pop()
                children = await expander.expand(run, chain)
                nodes += len(children)
                stack.extend([*chain, child] for child in reversed(children) if not child.is_leaf)
    return nodes


async def _ignore(event: Any) -> None:
    return None


async def main(args: argparse.Namespace) -> None:
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(64))
    ids = [str(entry["query_id"]) for entry in json.loads(QUERY_FILE.read_text())[: args.queries]]

    def slow_policy(body: dict[str, Any]) -> list[str]:
        time.sleep(args.latency)
        return tree_policy(body)

    rates: dict[str, list[float]] = {"baseline": [], "collect": []}
    async with OpenAIStub(slow_policy) as stub, create_provider("stabletoolbench") as provider:
        queries = provider.load_queries(str(QUERY_FILE), ids=ids)
        config = agent_config(stub.base_url, n=2, max_depth=3)
        sandbox = create_sandbox(config.sandbox.backend, config.sandbox.limits)
        async with LLMClient(config.llm) as llm, sandbox:
            collector = TreeCollector(config, concurrency=args.concurrency, llm=llm, sandbox=sandbox)
            expander = StepExpander(llm, config.search)
            await collector.start()
            await baseline(expander, sandbox, provider, queries[:1])  # warm-up: sandbox workers, imports
            for round_number in range(args.rounds):
                started = time.perf_counter()
                nodes = await baseline(expander, sandbox, provider, queries)
                rates["baseline"].append(nodes / (time.perf_counter() - started))
                with tempfile.TemporaryDirectory() as out:
                    started = time.perf_counter()
                    report = await collector.collect(queries, provider.toolset_for, out)
                    rates["collect"].append(report.progress.nodes / (time.perf_counter() - started))
                assert not report.failed, report.failed
                print(f"round {round_number + 1}: baseline {rates['baseline'][-1]:.1f} nodes/s, "
                      f"collect {rates['collect'][-1]:.1f} nodes/s", flush=True)  # fmt: skip
            await collector.aclose()
    base, ours = statistics.median(rates["baseline"]), statistics.median(rates["collect"])
    print(
        f"{args.queries} queries, n=2, depth 3, {args.latency:g} s per policy call, concurrency {args.concurrency}: "
        f"baseline {base:.1f} nodes/s, collect {ours:.1f} nodes/s, ratio {ours / base:.2f}x"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the stand-in model takes per call")
    parser.add_argument("--rounds", type=int, default=3)
    configure_logging(level="WARNING")
    asyncio.run(main(parser.parse_args()))
