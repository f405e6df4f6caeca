"""Whole runs against the ideal and the reference design: StableToolBench queries through simulated model servers.

One invocation starts a scripted OpenAI-compatible server (`--latency` per completion) and a PRM
server (`--prm-latency` per batch) in a child process (`bench/throughput_servers.py`), and the
embedded virtual StableToolBench server; then it solves the same `--queries` multi-step queries
(`filter_test_instruction/G1_instruction`, each one API call per step, then an answer) three ways:

- ideal: computed, each query's chain of steps × (completion latency + PRM latency), the queries
  dealt over `concurrency` slots (fully parallel when concurrency ≥ queries), nothing else costing;
- ours: `agent run`'s runner at each `--concurrency` on each `--backends` sandbox;
- reference design: queries one after another, the candidates of a step one after another, one
  completion and one PRM request per candidate, each execution a fresh `python -c` interpreter
  replaying the chosen steps before it (`bench/throughput_reference.py`).

Sequential configurations (reference, ours at concurrency 1) run `--sequential-sample` of the
queries and are scaled to all of them (their time adds up query by query); the table says so.

    python bench/throughput.py [--quick] [--queries 64] [--concurrency 1,8,32,64]
        [--backends restricted,process,docker,docker-execution] [--latency 0.2] [--prm-latency 0.05] [--json-out FILE]
        [--base-url URL --model NAME] [--rm-url URL] [--sandbox-option NAME=JSON ...]

See bench/README.md for a real vLLM server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402

from agent.config import load_config  # noqa: E402
from agent.runner import RunSettings, load_trajectory, run_benchmark  # noqa: E402
from bench.throughput_cpu import RunCpu  # noqa: E402
from bench.throughput_memory import PeakRss  # noqa: E402
from bench.throughput_reference import percentiles_ms, run_reference  # noqa: E402
from bench.throughput_servers import MODEL, ModelServers, chain_queries, chain_steps, load_raw_queries  # noqa: E402
from codetool_kernel.logging import configure_logging  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "stabletoolbench"
GROUP = "G1_instruction"
BACKENDS = ("restricted", "process", "docker", "docker-execution")
"""`docker`: a container per query (the default setting); `docker-execution`: one per execution."""


def ideal_wall(chains: list[int], per_step_s: float, concurrency: int) -> float:
    """Makespan of the queries' chains dealt in order to the first free of `concurrency` slots."""
    slots = [0.0] * max(1, min(concurrency, len(chains)))
    for steps in chains:
        slots[slots.index(min(slots))] += steps * per_step_s
    return max(slots)


def stage_percentiles(out: Path) -> dict[str, dict[str, float | None]]:
    """p50/p90/p99 of LLM calls, sandbox executions and PRM batches, from the run's trajectories."""
    llm, sandbox, prm = [], [], []
    for path in sorted((out / "trajectories").glob("*.json")):
        trajectory = load_trajectory(path)
        llm += [record.latency_s for record in trajectory.sampling]
        sandbox += [node.exec_s for node in trajectory.nodes if node.code]
        prm += list({(n.depth, n.parent): n.score_s for n in trajectory.nodes if n.score_s > 0}.values())
    return {name: percentiles_ms(values) for name, values in (("llm", llm), ("sandbox", sandbox), ("prm", prm))}


def run_ours(args: argparse.Namespace, servers: ModelServers, backend: str, concurrency: int, queries: int,
             folder: Path) -> dict[str, Any]:  # fmt: skip
    out = folder / f"{backend}-{concurrency}"
    overrides: dict[str, Any] = {
        "llm": {"base_url": args.base_url or servers.llm_url, "api_key": args.api_key, "model": args.model},
        "search": {"n": args.n, "max_depth": args.steps},
        "sandbox": sandbox_settings(backend, args.sandbox_option),
        "rm": {"url": args.rm_url or servers.prm_url},
    }
    config = load_config(overrides=overrides, environ={})
    settings = RunSettings(
        benchmark="stabletoolbench", data=args.data, groups=(GROUP,), filtered=True, out=out, limit=queries,
        concurrency=concurrency, progress=False, max_failures=None,
    )  # fmt: skip
    with PeakRss(exclude={servers.pid}) as memory, RunCpu(servers.pid) as machine:
        started, cpu = time.perf_counter(), time.process_time()
        result = run_benchmark(settings, config, console=Console(quiet=True))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if result.summary["finished"] != queries:
        raise RuntimeError(f"ours on {backend} at {concurrency}: {result.summary['finished']}/{queries} finished")
    return {"wall_s": wall, "cpu_s": cpu, "cpu": machine.figures(wall), "memory": memory.figures(min(concurrency, queries)), "stages": stage_percentiles(out),
            "chains": chosen_chains(out), "server": servers.counters()}  # fmt: skip


def sandbox_settings(backend: str, options: list[tuple[str, Any]]) -> dict[str, Any]:
    """The sandbox section for a `--backends` name (`docker-execution`: a container per execution)."""
    chosen = dict(options)
    if backend == "docker-execution":
        return {"backend": "docker", "options": {"container_per": "execution", **chosen}}
    return {"backend": backend, "options": chosen}


def chosen_chains(out: Path) -> list[int]:
    """Steps on each query's chosen path, in the run's query order."""
    return [len(load_trajectory(path).chosen_path) for path in sorted((out / "trajectories").glob("*.json"))]


def main() -> None:
    args = parse_args()
    configure_logging(level="WARNING")
    raw = load_raw_queries(str(args.data / "filter_test_instruction" / f"{GROUP}.json"), args.queries)
    if len(raw) < args.queries:
        raise SystemExit(f"error: {GROUP} holds only {len(raw)} queries; choose --queries {len(raw)} or fewer")
    chains = [chain_steps(len(q.get("api_list") or ()), args.steps) for q in raw]
    per_step = args.latency + args.prm_latency
    sample = min(args.sequential_sample or args.queries, args.queries)
    report = describe(args, chains, per_step)
    print_header(report)
    with ModelServers(chain_queries(raw), args.steps, args.latency, args.prm_latency) as servers, \
            tempfile.TemporaryDirectory() as folder:  # fmt: skip
        servers.counters()
        started = time.perf_counter()
        reference = asyncio.run(run_reference(args, servers, sample))
        reference_wall = (time.perf_counter() - started) * args.queries / sample
        add_row(report, {"design": "reference", "backend": "python -c", "concurrency": 1, "wall_s": reference_wall,
                         "measured_queries": sample, "ideal_s": ideal_wall(chains, per_step, 1), **reference,
                         "server": servers.counters()}, reference_wall)  # fmt: skip
        for backend in args.backends:
            missing = docker_missing() if backend.startswith("docker") else None
            if missing:
                print(f"docker: skipped ({missing})", flush=True)
                report["skipped"] = {"docker": missing}
                continue
            for concurrency in args.concurrency:
                measured = sample if concurrency == 1 else args.queries
                figures = run_ours(args, servers, backend, concurrency, measured, Path(folder))
                figures["wall_s"] *= args.queries / measured
                figures["cpu"] = {name: value * args.queries / measured if name.endswith("_s") else value
                                  for name, value in figures["cpu"].items()}  # fmt: skip
                ran = figures.pop("chains")
                if args.base_url:  # a real model chooses its own chains: the ideal follows what it did
                    chains = (ran * args.queries)[: args.queries]
                add_row(report, {"design": "ours", "backend": backend, "concurrency": concurrency,
                                 "measured_queries": measured, "ideal_s": ideal_wall(chains, per_step, concurrency),
                                 **figures}, reference_wall)  # fmt: skip
    print("* measured on a sample of the queries, one after another, and scaled to all of them")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def describe(args: argparse.Namespace, chains: list[int], per_step: float) -> dict[str, Any]:
    return {
        "queries": args.queries, "steps_max": args.steps, "n": args.n, "latency_s": args.latency,
        "prm_latency_s": args.prm_latency, "sandbox_options": dict(args.sandbox_option), "chain_steps": {str(k): chains.count(k) for k in sorted(set(chains))},
        "ideal_fully_parallel_s": ideal_wall(chains, per_step, len(chains)), "rows": [],
    }  # fmt: skip


def add_row(report: dict[str, Any], row: dict[str, Any], reference_wall: float) -> None:
    """Complete `row` with its ratios, keep it in `report` and print it."""
    row["queries_per_s"] = report["queries"] / row["wall_s"]
    row["ratio_to_ideal"] = row["wall_s"] / row["ideal_s"] if row["ideal_s"] > 0 else None
    row["speedup_over_reference"] = reference_wall / row["wall_s"]
    report["rows"].append(row)
    memory, stages, cpu = row.get("memory") or {}, row.get("stages") or {}, row.get("cpu") or {}
    scaled = "*" if row["measured_queries"] != report["queries"] else " "
    cells = "  ".join(
        f"{_ms(stages[s]['p50'])}/{_ms(stages[s]['p99'])}".rjust(13) for s in ("llm", "sandbox", "prm")
    )
    print(f"{row['design']:9} {row['backend']:10} {row['concurrency']:>4} {row['wall_s']:>7.2f}{scaled} "
          f"{row['queries_per_s']:>6.2f} {row['ideal_s']:>7.2f} {_ratio(row['ratio_to_ideal']):>7} "
          f"{row['speedup_over_reference']:>6.1f} {_num(memory.get('peak_mb')):>7} {_num(memory.get('mb_per_query')):>6} "
          f"{_num(cpu.get('ours_s')):>6} {_ratio(cpu.get('cpu_floor_s')):>6}  {cells}", flush=True)  # fmt: skip


def print_header(report: dict[str, Any]) -> None:
    print(f"{report['queries']} StableToolBench queries (chains {report['chain_steps']} steps), n={report['n']}, "
          f"completion {report['latency_s'] * 1000:g} ms, PRM batch {report['prm_latency_s'] * 1000:g} ms; "
          f"ideal fully parallel {report['ideal_fully_parallel_s']:.2f} s")  # fmt: skip
    print(f"{'design':9} {'backend':10} {'conc':>4} {'wall s':>8} {'q/s':>6} {'ideal s':>7} {'x ideal':>7} "
          f"{'x ref':>6} {'peak MB':>7} {'MB/q':>6} {'cpu s':>6} {'floor':>6}  llm p50/p99 ms  sandbox p50/p99  prm p50/p99", flush=True)  # fmt: skip


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _num(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.0f}"


def docker_missing() -> str | None:
    """Why the docker backend cannot run here (no engine, no image), or None."""
    try:
        import docker

        from sandbox.image import default_image_tag

        client = docker.from_env()
        client.ping()
        client.images.get(default_image_tag())
    except ImportError:
        return "the docker client library is not installed"
    except Exception as exc:  # no engine, no permission, no image: all mean "skip", said in one line
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no engine'}"[:200] + \
            "; build the image with `python -m sandbox build-image`"  # fmt: skip
    return None


def _ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def _backends(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"backends are {', '.join(BACKENDS)}; got {text!r}")
    return names


def _option(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not sep or not name.strip() or parsed is None:
        raise argparse.ArgumentTypeError(f"expected NAME=JSON (e.g. pool_size=8), got {text!r}")
    return name.strip(), parsed


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 queries, concurrency 1,8,16, restricted and process")
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--concurrency", type=_ints, default=[1, 8, 32, 64])
    parser.add_argument("--backends", type=_backends, default=["restricted", "process", "docker"])
    parser.add_argument("--latency", type=_seconds, default=0.2, help="seconds per completion request")
    parser.add_argument("--prm-latency", type=_seconds, default=0.05, help="seconds per PRM batch")
    parser.add_argument("--steps", type=int, default=4, help="most steps of a query (API calls + the answer)")
    parser.add_argument("--n", type=int, default=2, help="candidates per step")
    parser.add_argument("--sequential-sample", type=int, default=16,
                        help="queries measured for the sequential designs, scaled to all (0: all)")  # fmt: skip
    parser.add_argument("--data", type=Path, default=DATA, help="StableToolBench query folder")
    parser.add_argument("--base-url", help="a real OpenAI-compatible server (vLLM) instead of the scripted one")
    parser.add_argument("--api-key", default="bench")
    parser.add_argument("--rm-url", help="a real PRM server (python -m rm serve) instead of the simulated one")
    parser.add_argument("--model", default=MODEL, help="policy model name (the real server's, with --base-url)")
    parser.add_argument("--sandbox-option", type=_option, action="append", default=[], metavar="NAME=JSON",
                        help="a sandbox option for every backend, e.g. pool_size=8 (repeatable)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.queries, args.concurrency, args.backends = 16, [1, 8, 16], [b for b in args.backends if not b.startswith("docker")]
    if args.queries < 1 or args.steps < 2 or args.n < 1 or args.sequential_sample < 0:
        parser.error("--queries and --n must be >= 1, --steps >= 2, --sequential-sample >= 0")
    return args


if __name__ == "__main__":
    main()
