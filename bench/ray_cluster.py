"""The ray executor on a multi-node cluster simulated on this machine, against the local executor.

The same StableToolBench queries as `bench/throughput.py` (one API call per step, then an answer,
through the scripted model servers of `bench/throughput_servers.py`) are solved three ways:

- local: `--executor local` with `--nodes` × `--concurrency` queries in flight, in this process;
- ray (cold): `--executor ray` on a `ray.cluster_utils.Cluster` of a head node (no work) and
  `--nodes` worker nodes of `--node-cpus` CPUs, one shard per node with `--concurrency` queries in
  flight each; its workers start in this run (process start and imports included);
- ray (warm): the same again into a fresh run directory, the job's workers already up.

Every result and audit record of the ray runs travels back to this process, which alone writes
the run directories. Cluster start-up is reported apart; `slowest shard` is the longest time a
worker spent in its shard (`run.json` keeps each shard's `seconds`), `outside` the rest of the wall
time (task start, shipping, the driver's writes and its polling).

    python bench/ray_cluster.py [--queries 16] [--nodes 2] [--node-cpus 1] [--concurrency 4]
        [--latency 0.2] [--prm-latency 0.05] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402

from agent.config import load_config  # noqa: E402
from agent.runner import RunSettings, run_benchmark  # noqa: E402
from bench.throughput_servers import MODEL, ModelServers, chain_queries, load_raw_queries  # noqa: E402
from codetool_kernel.logging import configure_logging  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "stabletoolbench"
GROUP = "G1_instruction"
STEPS = 4


def one_run(args: argparse.Namespace, servers: ModelServers, out: Path, executor: str) -> dict[str, Any]:
    overrides = {
        "llm": {"base_url": servers.llm_url, "api_key": "bench", "model": MODEL},
        "search": {"n": args.n, "max_depth": STEPS},
        "sandbox": {"backend": "restricted"},
        "rm": {"url": servers.prm_url},
    }
    ray = executor == "ray"
    settings = RunSettings(
        benchmark="stabletoolbench", data=args.data, groups=(GROUP,), filtered=True, out=out, limit=args.queries,
        executor=executor, workers=args.nodes if ray else None,
        concurrency=args.concurrency if ray else args.concurrency * args.nodes, progress=False, max_failures=None,
    )  # fmt: skip
    started = time.perf_counter()
    result = run_benchmark(settings, load_config(overrides=overrides, environ={}), console=Console(quiet=True))
    wall = time.perf_counter() - started
    if result.summary["finished"] != args.queries:
        raise RuntimeError(f"{executor}: {result.summary['finished']}/{args.queries} finished")
    with sqlite3.connect(out / "audit.sqlite") as db:
        executions = db.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
    shards = result.summary["shards"]
    in_shards = max((shard["seconds"] for shard in shards), default=wall) if ray else wall
    return {"wall_s": wall, "queries_per_s": args.queries / wall, "executions": executions,
            "slowest_shard_s": in_shards, "outside_shards_s": wall - in_shards,
            "nodes": sorted({shard.get("node") or "driver" for shard in shards})}  # fmt: skip


def main() -> None:
    args = parse_args()
    configure_logging(level="WARNING")
    import ray
    from ray.cluster_utils import Cluster

    raw = load_raw_queries(str(args.data / "filter_test_instruction" / f"{GROUP}.json"), args.queries)
    report: dict[str, Any] = {"queries": args.queries, "nodes": args.nodes, "node_cpus": args.node_cpus,
                              "concurrency_per_node": args.concurrency, "latency_s": args.latency,
                              "prm_latency_s": args.prm_latency, "n": args.n, "rows": {}}  # fmt: skip
    with ModelServers(chain_queries(raw), STEPS, args.latency, args.prm_latency) as servers, \
            tempfile.TemporaryDirectory() as folder:  # fmt: skip
        report["rows"]["local"] = one_run(args, servers, Path(folder) / "local", "local")
        started = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        try:
            for _ in range(args.nodes):
                cluster.add_node(num_cpus=args.node_cpus)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
            report["cluster_start_s"] = time.perf_counter() - started
            report["rows"]["ray (cold)"] = one_run(args, servers, Path(folder) / "ray-cold", "ray")
            report["rows"]["ray (warm)"] = one_run(args, servers, Path(folder) / "ray-warm", "ray")
        finally:
            ray.shutdown()
            cluster.shutdown()
    local = report["rows"]["local"]["wall_s"]
    print(f"{args.queries} queries, {args.nodes} nodes x {args.concurrency} in flight, "
          f"{args.latency:.2f} s per completion, {args.prm_latency:.2f} s per PRM batch, n={args.n}; "
          f"cluster start {report['cluster_start_s']:.1f} s")  # fmt: skip
    print(f"{'run':<12} {'wall':>8} {'q/s':>6} {'vs local':>9} {'slowest shard':>14} {'outside':>8} {'executions':>10}  nodes")
    for name, row in report["rows"].items():
        row["vs_local"] = row["wall_s"] / local
        print(f"{name:<12} {row['wall_s']:>7.1f}s {row['queries_per_s']:>6.2f} {row['vs_local']:>8.2f}x "
              f"{row['slowest_shard_s']:>13.1f}s {row['outside_shards_s']:>7.1f}s {row['executions']:>10}  {len(row['nodes'])}")  # fmt: skip
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--nodes", type=int, default=2, help="worker nodes (the head node takes no work)")
    parser.add_argument("--node-cpus", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=4, help="queries in flight per node")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per completion request")
    parser.add_argument("--prm-latency", type=float, default=0.05, help="seconds per PRM batch")
    parser.add_argument("--n", type=int, default=2, help="candidates per step")
    parser.add_argument("--data", type=Path, default=DATA, help="StableToolBench query folder")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if min(args.queries, args.nodes, args.node_cpus, args.concurrency, args.n) < 1 or min(args.latency, args.prm_latency) < 0:
        parser.error("--queries, --nodes, --node-cpus, --concurrency and --n must be >= 1; latencies >= 0")
    return args


if __name__ == "__main__":
    main()
