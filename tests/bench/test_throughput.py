"""`bench/throughput.py` end to end on two queries: every design runs and the JSON holds what it saw."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from bench.throughput import ideal_wall
from bench.throughput_memory import tree_rss

REPO = Path(__file__).resolve().parents[2]


def test_ideal_deals_chains_over_the_slots():
    assert ideal_wall([4, 4, 3], 0.25, 3) == 1.0
    assert ideal_wall([4, 4, 3], 0.25, 1) == 2.75
    assert ideal_wall([4, 4, 4, 4], 0.25, 2) == 2.0


def test_two_queries_through_every_design(tmp_path):
    out = tmp_path / "t.json"
    done = subprocess.run(
        [sys.executable, "bench/throughput.py", "--queries", "2", "--concurrency", "2", "--backends", "restricted",
         "--sequential-sample", "1", "--latency", "0.01", "--prm-latency", "0.01", "--json-out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text(), parse_constant=lambda token: (_ for _ in ()).throw(ValueError(token)))
    steps = sum(int(k) * v for k, v in report["chain_steps"].items())
    reference, ours = report["rows"]
    assert (reference["design"], reference["measured_queries"]) == ("reference", 1)
    assert reference["server"]["prm_items"] == reference["server"]["prm_requests"], "one PRM request per candidate"
    assert ours["design"] == "ours" and ours["server"]["llm_requests"] == steps, "one request per step for n candidates"
    assert ours["server"]["prm_items"] == 2 * steps and ours["stages"]["sandbox"]["count"] == 2 * steps
    assert abs(ours["ideal_s"] - report["ideal_fully_parallel_s"]) < 1e-9, "2 queries, 2 slots: fully parallel"
    assert ours["memory"]["peak_mb"] > 0 and ours["speedup_over_reference"] > 0
    assert "ours      restricted    2" in done.stdout



def test_tree_rss_counts_descendants_and_leaves_out_the_excluded_subtree():
    holder = "import os, time; x = b'x' * 60_000_000; print(os.getpid(), flush=True); time.sleep(60)"
    # a child, itself the parent of a grandchild holding 60 MB
    child = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {holder!r}])"],
        stdout=subprocess.PIPE,
        text=True,
    )
    grandchild = int(child.stdout.readline())
    try:
        whole, without = tree_rss({None}), tree_rss({child.pid})
    finally:
        os.kill(grandchild, signal.SIGKILL)
        child.wait()
    assert whole - without > 55 * 1024 * 1024
