"""`--executor ray` on a three-node cluster simulated on this machine, whose workers share no file with the driver.

The head node takes no work; each of two worker nodes runs one shard. Every worker process
starts in a working directory of its own, and `tests/runner/ray_guard.py` refuses it any access
to the run directories and the query files (noting each refusal): the driver must ship the
queries and write everything itself from what the workers send back.
"""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import ray
from ray.cluster_utils import Cluster
from rich.console import Console

from agent.config import AgentConfig, load_config
from agent.runner import RunResult, RunSettings, load_trajectory, run_benchmark
from sandbox.audit import AuditRecord, AuditStore
from tests.runner import ray_guard
from tests.runner.scenario import (
    MODEL,
    REPO,
    STB_DATA,
    STB_GROUP,
    StubThread,
    finish,
    python_module,
    write_agent_config,
)
from tests.support.policies import STB_URL, stb_key_from, step, step_of

QUERIES = 4


@dataclass
class SimulatedCluster:
    driver_side: Path
    """Where the runs are written: out of the workers' reach."""
    violations: Path
    worker_nodes: set[str]
    address: str = ""
    runtime_env: dict[str, Any] = field(default_factory=dict)
    """The guard, for the workers of every job (`ray.init`, or a driver's `RAY_JOB_CONFIG_JSON_ENV_VAR`)."""

    def refused(self) -> list[str]:
        return [line for path in sorted(self.violations.iterdir()) for line in path.read_text().splitlines()]


@ray.remote(num_cpus=0)
def _reach(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except PermissionError as exc:
        return f"refused: {exc}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedCluster]:
    driver_side, violations = tmp_path_factory.mktemp("driver-side"), tmp_path_factory.mktemp("violations")
    env = {
        ray_guard.FORBIDDEN_ENV: os.pathsep.join([str(driver_side), str(STB_DATA)]),
        ray_guard.VIOLATIONS_ENV: str(violations),
        ray_guard.HOMES_ENV: str(tmp_path_factory.mktemp("worker-homes")),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    runtime_env = {"worker_process_setup_hook": "tests.runner.ray_guard.install", "env_vars": env}
    simulated = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        nodes = [simulated.add_node(num_cpus=1) for _ in range(2)]
        simulated.wait_for_nodes()
        ray.init(address=simulated.address, log_to_driver=False, runtime_env=runtime_env)
        probe = driver_side / "probe.txt"
        probe.write_text("driver only")
        assert ray.get(_reach.remote(str(probe)), timeout=120).startswith("refused:"), "the guard is not in force"
        assert any(str(probe) in line for line in SimulatedCluster(driver_side, violations, set()).refused())
        for note in violations.iterdir():
            note.unlink()
        yield SimulatedCluster(driver_side, violations, {node.node_id for node in nodes}, simulated.address, runtime_env)
    finally:
        ray.shutdown()
        simulated.shutdown()


def stb_queries() -> list[dict[str, Any]]:
    return json.loads((STB_DATA / "filter_test_instruction" / f"{STB_GROUP}.json").read_text())[:QUERIES]


class CallThenAnswer:
    """Step 1 calls the query's first API through the virtual server; step 2 answers (or fails, for `failing`)."""

    def __init__(self, failing: set[str] = frozenset(), held: str | None = None) -> None:  # type: ignore[assignment]
        self.queries = {query["query"]: query for query in stb_queries()}
        self.failing = set(failing)
        self.lock = threading.Lock()
        self.held = held
        """Its step 2 waits for `release` (the run is interrupted meanwhile)."""
        self.reached, self.release = threading.Event(), threading.Event()

    def __call__(self, body: dict[str, Any]) -> list[str]:
        asked = next(m["content"] for m in body["messages"] if m["role"] == "user")
        query = next(query for text, query in self.queries.items() if text in asked)
        if step_of(body) >= 2:
            if str(query["query_id"]) == self.held and not self.release.is_set():
                self.reached.set()
                self.release.wait(120)
            with self.lock:
                if str(query["query_id"]) in self.failing:
                    raise RuntimeError("scripted endpoint failure")
            return [step(2, "Answer", f"print('answer to {query['query_id']}')", finished=True)]
        api = query["api_list"][0]
        arguments = {p["name"]: p.get("default") or "x" for p in api.get("required_parameters") or ()}
        payload = {"category": api["category_name"], "tool_name": api["tool_name"], "api_name": api["api_name"],
                   "tool_input": arguments, "strip": ""}  # fmt: skip
        code = (
            f"import requests\nKEY = {stb_key_from(body)!r}\n"
            f"reply = requests.post({STB_URL!r}, json={{**{payload!r}, 'toolbench_key': KEY}}).json()\n"
            "print('reply:', str(reply)[:80])"
        )
        return [step(1, f"Call {api['api_name']}", code)]


def agent_config(base_url: str, jsonl: Path) -> AgentConfig:
    overrides = {
        "llm": {"base_url": base_url, "api_key": "test", "model": MODEL, "max_retries": 0},
        "search": {"n": 1, "max_depth": 3},
        "sandbox": {"backend": "restricted", "limits": {"timeout_s": 20}},
        "audit_jsonl": str(jsonl),
    }
    return load_config(overrides=overrides, environ={})


def run(out: Path, config: AgentConfig, *, concurrency: int, max_failures: int | None) -> RunResult:
    settings = RunSettings(
        benchmark="stabletoolbench", data=STB_DATA, groups=(STB_GROUP,), filtered=True, out=out, limit=QUERIES,
        executor="ray", workers=2, concurrency=concurrency, max_failures=max_failures, progress=False,
    )  # fmt: skip
    return run_benchmark(settings, config, console=Console(file=io.StringIO()))


def audit_rows(out: Path) -> list[AuditRecord]:
    with AuditStore(out / "audit.sqlite") as store:
        return store.executions()


def executed_nodes(out: Path) -> dict[tuple[str, str], int]:
    """(query id, node id) of every executed node of every trajectory -> how many API calls it made."""
    found = {}
    for path in (out / "trajectories").iterdir():
        trajectory = load_trajectory(path)
        for node in trajectory.nodes:
            if node.code:
                found[(trajectory.query_id, node.path)] = len(node.api_calls)
    return found


def test_workers_without_the_run_directory_solve_and_the_driver_writes_it_all(cluster: SimulatedCluster):
    out, jsonl = cluster.driver_side / "run", cluster.driver_side / "audit.jsonl"
    with StubThread(CallThenAnswer()) as stub:
        result = run(out, agent_config(stub.base_url, jsonl), concurrency=2, max_failures=None)

    assert result.status == "completed" and result.summary["finished"] == QUERIES, result.summary
    ids = [str(query["query_id"]) for query in stb_queries()]
    assert sorted(path.stem for path in (out / "trajectories").iterdir()) == sorted(ids)
    shards = result.summary["shards"]
    assert {shard["node"] for shard in shards} == cluster.worker_nodes, "each worker node runs one shard"
    worker_pids = {shard["pid"] for shard in shards}
    assert os.getpid() not in worker_pids

    rows = audit_rows(out)
    executed = executed_nodes(out)
    assert len(executed) == 2 * QUERIES
    assert sorted((row.query_id, row.node) for row in rows) == sorted(executed)
    assert {(row.query_id, row.node): row.api_call_count for row in rows} == executed
    assert all(executed[(query_id, "1-1")] == 1 for query_id in ids), "step 1 of each query called its API"
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert {row.run_id for row in rows} == {run_id} and {row.attempt for row in rows} == {1}
    assert {row.writer_pid for row in rows} <= worker_pids, "the records come from the workers' executions"
    mirrored = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sorted(line["id"] for line in mirrored) == sorted(row.id for row in rows)
    assert cluster.refused() == []


def test_the_error_budget_is_the_runs_across_workers_and_the_run_resumes(cluster: SimulatedCluster):
    out, jsonl = cluster.driver_side / "budget", cluster.driver_side / "budget.jsonl"
    ids = [str(query["query_id"]) for query in stb_queries()]
    policy = CallThenAnswer(failing={ids[0], ids[1]})  # the first query of each shard
    with StubThread(policy) as stub:
        config = agent_config(stub.base_url, jsonl)
        first = run(out, config, concurrency=1, max_failures=0)
        failures = sorted(path.stem for path in (out / "failures").iterdir())
        first_rows = audit_rows(out)
        with policy.lock:
            policy.failing.clear()
        second = run(out, config, concurrency=1, max_failures=None)

    assert first.status == "aborted", first.summary
    assert len(failures) == 1 and failures[0] in ids[:2], "one failure over the budget of 0, whichever shard had it"
    assert first.summary["failed"] == 1 and first.summary["finished"] == 0
    failed_rows = [row for row in first_rows if row.query_id == failures[0]]
    assert [(row.node, row.attempt, row.status) for row in failed_rows] == [("1-1", 1, "ok")]

    assert second.status == "completed" and second.summary["finished"] == QUERIES, second.summary
    assert not any((out / "failures").iterdir())
    rows = audit_rows(out)
    assert [row.id for row in rows[: len(first_rows)]] == [row.id for row in first_rows]
    later = rows[len(first_rows) :]
    assert {row.attempt for row in later} == {2}
    assert sorted((row.query_id, row.node) for row in later) == sorted(executed_nodes(out))
    assert cluster.refused() == []


def test_an_interrupted_driver_keeps_what_the_workers_did_and_resumes(cluster: SimulatedCluster):
    out = cluster.driver_side / "interrupted"
    ids = [str(query["query_id"]) for query in stb_queries()]
    policy = CallThenAnswer(held=ids[0])
    config = write_agent_config(cluster.driver_side.parent)
    env = {"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps({"runtime_env": cluster.runtime_env})}
    with StubThread(policy) as stub:
        args = ["run", "--benchmark", "stabletoolbench", "--data", str(STB_DATA), "--group", STB_GROUP, "--filtered",
                "--limit", str(QUERIES), "--out", str(out), "--base-url", stub.base_url, "--model", MODEL,
                "--config", str(config), "--max-depth", "3", "--n", "1", "--no-progress", "--executor", "ray",
                "--address", cluster.address, "--workers", "2", "--concurrency", "2"]  # fmt: skip
        driver = python_module("agent", *args, env=env)
        try:
            assert policy.reached.wait(180), "the held query never reached its second step"
            deadline = time.monotonic() + 120
            while len(list((out / "trajectories").glob("*.json"))) < QUERIES - 1 and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            driver.send_signal(signal.SIGINT)
        code, _, stderr = finish(driver)
        kept = sorted(path.stem for path in (out / "trajectories").iterdir())
        first_rows = audit_rows(out)
        policy.release.set()
        resumed = finish(python_module("agent", *args, env=env))

    assert code == 130, stderr
    assert kept == sorted(ids[1:]) and not any((out / "failures").iterdir()), "the held query is pending, not failed"
    held_rows = [(row.node, row.attempt) for row in first_rows if row.query_id == ids[0]]
    assert held_rows == [("1-1", 1)], "the held query's first step ran before the stop and its record was kept"
    assert resumed[0] == 0, resumed[2]
    sessions = json.loads((out / "run.json").read_text())["sessions"]
    assert [session["status"] for session in sessions] == ["interrupted", "completed"]
    assert sorted(path.stem for path in (out / "trajectories").iterdir()) == sorted(ids)
    rows = audit_rows(out)
    assert sorted((row.query_id, row.node) for row in rows if row.attempt == 2) == [(ids[0], "1-1"), (ids[0], "1-1-1")]
    assert cluster.refused() == []
