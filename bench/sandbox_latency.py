"""Latency and throughput of sandbox backends against spawning a fresh interpreter per execution.

Method: one small cell that makes one API call (answered by an in-process async handler,
as the gateway's memo would) and prints part of the answer. For every backend named with
`--backend` (default: restricted, process, and docker when an engine and the image are
there): `--runs` executions one after another (median and p95 latency, after a few
warm-up runs), then `--throughput-runs` executions with `--in-flight` running at once
(executions per second). The docker backend is measured with its warm pool full before
each sequential run (the latency a caller sees when executions come in bursts, as the
agent's candidates do; refilling is not timed), and on a quarter of the runs, since
every execution costs a container. Baselines run in the same process, same machine,
same time:

* `fresh runner`: spawn `python -m runner` per execution (restricted and plain mode), the
  same runner and protocol the backends use, so it does exactly the same work;
* `python -c`: spawn `python -c` running the equivalent code with the API answer inlined
  (a lower bound for any design that starts an interpreter per execution).

Ratios are baseline time / backend time (higher is better for the backend).

    python bench/sandbox_latency.py [--backend process] [--runs 200] [--in-flight 8]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

from codetool_kernel.protocol import SandboxLimits
from sandbox import Cell, ToolRequest, ToolResponse, create_sandbox
from sandbox.exchange import run_exchange
from sandbox.forkserver import link_runner, scrubbed_environment

CELL = Cell(
    code=(
        "import requests\n"
        "r = requests.get('https://api.example.test/items', params={'id': 7})\n"
        "print(r.json()['name'])\n"
    )
)
INLINE_CODE = "import json\nbody = '{\"id\": 7, \"name\": \"widget\"}'\nprint(json.loads(body)['name'])\n"
EXPECTED = "widget\n"
WARM_UP_RUNS = 5

Execution = Callable[[], Awaitable[str]]


async def handler(request: ToolRequest) -> ToolResponse:
    return ToolResponse(status=200, headers={"Content-Type": "application/json"}, body='{"id": 7, "name": "widget"}')


async def fresh_runner_execution(workdir: str, mode: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runner", "--mode", mode,
        cwd=workdir, env=scrubbed_environment(workdir),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    outcome = await run_exchange(process.stdout, process.stdin, CELL, SandboxLimits(), handler, "fresh-runner")
    await process.wait()
    return outcome.result.stdout


async def python_c_execution() -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", INLINE_CODE, stdout=asyncio.subprocess.PIPE, env=scrubbed_environment("/tmp")
    )
    stdout, _ = await process.communicate()
    return stdout.decode()


async def measure(
    name: str, execute: Execution, runs: int, throughput_runs: int, in_flight: int, before_each: Callable[[], Awaitable[None]] | None = None
) -> dict[str, float | str]:
    for _ in range(WARM_UP_RUNS):
        if (out := await execute()) != EXPECTED:
            raise SystemExit(f"{name}: unexpected output {out!r}")
    latencies = []
    for _ in range(runs):
        if before_each is not None:
            await before_each()
        started = time.perf_counter()
        await execute()
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            await execute()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(throughput_runs)))
    per_second = throughput_runs / (time.perf_counter() - started)
    return {
        "name": name,
        "median_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] * 1000,
        "per_s": per_second,
    }


def default_backends() -> list[str]:
    """restricted and process, and docker when an engine and the image are there."""
    from sandbox.docker_engine import connect
    from sandbox.image import default_image_tag

    try:
        client = connect(timeout_s=10)
        client.images.get(default_image_tag())
        client.close()
    except Exception as exc:  # noqa: BLE001 - no docker here: say so and measure the others
        print(f"docker not measured: {exc}", file=sys.stderr)
        return ["restricted", "process"]
    return ["restricted", "process", "docker"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", help="backend name (repeatable; default: every one that can run here)")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--throughput-runs", type=int, default=400)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--pool-size", type=int, default=4)
    args = parser.parse_args()
    rows = []
    for name in args.backend or default_backends():
        async with create_sandbox(name, pool_size=args.pool_size) as sandbox:

            async def execute(sandbox=sandbox) -> str:
                return (await sandbox.execute(CELL, handler)).stdout

            warm = getattr(sandbox, "wait_warm", None)
            runs, throughput_runs = (args.runs, args.throughput_runs) if warm is None else (args.runs // 4, args.throughput_runs // 4)
            rows.append(await measure(name, execute, runs, throughput_runs, args.in_flight, warm))
    baseline_runs = max(20, args.runs // 4)
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as workdir:
        link_runner(workdir)
        baselines = [
            await measure(
                f"fresh {mode} runner per execution", functools.partial(fresh_runner_execution, workdir, mode),
                baseline_runs, baseline_runs * 2, args.in_flight,
            )
            for mode in ("restricted", "plain")
        ]  # fmt: skip
        baselines.append(await measure("python -c per execution", python_c_execution, baseline_runs, baseline_runs * 2, args.in_flight))
    print(f"{'execution':38} {'median ms':>10} {'p95 ms':>10} {'exec/s @' + str(args.in_flight):>12}")
    for row in rows + baselines:
        print(f"{row['name']:38} {row['median_ms']:10.2f} {row['p95_ms']:10.2f} {row['per_s']:12.1f}")
    print()
    for row in rows:
        for base in baselines:
            print(
                f"{row['name']} vs {base['name']}: median {base['median_ms'] / row['median_ms']:.1f}x faster, "
                f"throughput {row['per_s'] / base['per_s']:.1f}x"
            )


if __name__ == "__main__":
    asyncio.run(main())
