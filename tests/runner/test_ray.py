"""`--executor ray`: a run sharded over two Ray workers of a local instance, then resumed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import ray

from agent.runner import load_trajectory
from tests.runner.scenario import (
    ScriptedServer,
    StubThread,
    finish,
    python_module,
    query_texts,
    tmdb_args,
    write_agent_config,
)


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_shards_run_on_two_workers_and_resume(ray_address, tmp_path):
    server = ScriptedServer(query_texts())
    server.block.set()
    out, config = tmp_path / "run", write_agent_config(tmp_path)
    args = [*tmdb_args("", out, config, "--executor", "ray", "--address", ray_address, "--workers", "2")]
    with StubThread(server) as stub:
        args[args.index("--base-url") + 1] = stub.base_url
        args[args.index("--limit") + 1] = "4"
        code, _, first_stderr = finish(python_module("agent", *args))
        assert code == 0, first_stderr
        first_requests = len(stub.requests)
        code, _, stderr = finish(python_module("agent", *args))
        assert code == 0, stderr
        assert len(stub.requests) == first_requests, "the resumed run asked for finished queries again"

    names = sorted(path.name for path in (out / "trajectories").iterdir())
    assert names == ["q0.json", "q1.json", "q2.json", "q3.json"]
    assert [load_trajectory(out / "trajectories" / name).stop_reason for name in names] == ["finished"] * 4
    manifest = json.loads((out / "run.json").read_text())
    first, second = manifest["sessions"]
    assert first["executor"] == "ray" and first["status"] == "completed"
    workers = {shard["pid"] for shard in first["summary"]["shards"]}
    assert len(workers) == 2 and os.getpid() not in workers
    assert first["summary"]["finished"] == 4 and second["summary"]["finished"] == 4
    assert second["summary"]["shards"] == [] and manifest["status"] == "completed"
    progress = [line for line in first_stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 4 and progress[-1].startswith("[4/4]"), first_stderr
