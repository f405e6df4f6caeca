"""Queries per second of `python -m agent run`'s async runner: many queries in flight vs one at a time.

Method: `--queries` RestBench-TMDB queries against the stand-in OpenAI server, which answers
every step request after `--latency` seconds (a simulated model), with the embedded virtual
TMDB and the restricted sandbox. Each query takes two steps (n=2): a search API call, then an
answer. The same queries run twice in this process, same machine, same time, into fresh run
directories: first with `--concurrency 1` (the baseline: one query after another, as the
reference release does), then with `--concurrency K`. The ratio is baseline time / runner time.

    python bench/run_throughput.py [--queries 24] [--concurrency 8] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402

from agent.config import load_config  # noqa: E402
from agent.runner import RunSettings, run_benchmark  # noqa: E402
from codetool_kernel.logging import configure_logging  # noqa: E402
from tests.runner.scenario import MODEL, TMDB_QUERIES, TMDB_SPEC, StubThread  # noqa: E402
from tests.support.policies import TMDB_BASE, step, step_of  # noqa: E402


def timed_policy(latency_s: float):
    def policy(body: dict[str, Any]) -> list[str]:
        time.sleep(latency_s)
        if step_of(body) == 1:
            code = (
                "import requests\n"
                f"found = requests.get('{TMDB_BASE}/search/movie', headers=headers, params={{'query': 'Alien'}}).json()\n"
                "print('first result:', found['results'][0]['title'])"
            )
            return [step(1, "Search", code)]
        return [step(2, "Answer", "print('done')", finished=True)]

    return policy


def one_run(base_url: str, out: Path, queries: int, concurrency: int) -> float:
    config = load_config(
        overrides={"llm": {"base_url": base_url, "api_key": "bench", "model": MODEL, "max_retries": 0}},
        environ={},
    )
    settings = RunSettings(
        benchmark="tmdb",
        data=TMDB_QUERIES,
        spec=TMDB_SPEC,
        out=out,
        limit=queries,
        concurrency=concurrency,
        progress=False,
    )
    started = time.perf_counter()
    result = run_benchmark(settings, config, console=Console(quiet=True))
    elapsed = time.perf_counter() - started
    assert result.summary["finished"] == queries, result.summary
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds the simulated model takes per request")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    with StubThread(timed_policy(args.latency)) as stub, tempfile.TemporaryDirectory() as folder:
        baseline = one_run(stub.base_url, Path(folder) / "sequential", args.queries, 1)
        runner = one_run(stub.base_url, Path(folder) / "concurrent", args.queries, args.concurrency)
    print(f"{args.queries} queries, 2 steps each, n=2, simulated model latency {args.latency:g}s")
    print(f"  one at a time      : {baseline:7.2f}s  {args.queries / baseline:6.2f} queries/s")
    print(f"  {args.concurrency:2d} in flight       : {runner:7.2f}s  {args.queries / runner:6.2f} queries/s")
    print(f"  ratio (baseline / runner): {baseline / runner:.1f}x")


if __name__ == "__main__":
    main()
