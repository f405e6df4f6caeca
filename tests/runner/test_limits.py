"""No hidden caps: a run's endpoint, PRM and gateway bounds follow `--concurrency` unless set."""

from __future__ import annotations

import json
import threading
from typing import Any

from agent.config import load_config
from agent.runner.limits import follow_concurrency, limits_line
from tests.runner.scenario import MODEL, TMDB_QUERIES, TMDB_SPEC, StubThread, finish, python_module, write_agent_config
from tests.support.policies import step

QUERIES = 32
BEYOND_OLD_CAP = 17
"""More LLM requests at once than the former fixed `llm.max_concurrency` (16) let through."""


class HoldUntilCrowded:
    """A policy that holds every request until `crowd` of them are waiting at once (or `patience_s` passed)."""

    def __init__(self, crowd: int, patience_s: float = 60.0) -> None:
        self.crowd, self.patience_s = crowd, patience_s
        self.waiting = 0
        self._lock = threading.Lock()
        self._crowded = threading.Event()

    def __call__(self, body: dict[str, Any]) -> list[str]:
        with self._lock:
            self.waiting += 1
            if self.waiting >= self.crowd:
                self._crowded.set()
        self._crowded.wait(self.patience_s)
        return [step(1, "Answer", "print('done')", finished=True)]


def test_run_concurrency_is_not_capped_by_the_llm_default(tmp_path):
    config = write_agent_config(tmp_path)
    out = tmp_path / "run"
    with StubThread(HoldUntilCrowded(BEYOND_OLD_CAP)) as stub:
        code, _, stderr = finish(
            python_module(
                "agent", "run", "--no-progress", "--benchmark", "tmdb", "--data", str(TMDB_QUERIES),
                "--spec", str(TMDB_SPEC), "--out", str(out), "--config", str(config), "--base-url", stub.base_url,
                "--model", MODEL, "--limit", str(QUERIES), "--concurrency", str(QUERIES), "--max-depth", "1",
                "--prm-concurrency", "3",
            )  # fmt: skip
        )
        peak = stub.peak_in_flight
    assert code == 0, stderr
    assert peak >= BEYOND_OLD_CAP, f"at most {peak} LLM requests were in flight at once"
    line = next(line for line in stderr.splitlines() if line.startswith("limits:"))
    assert f"queries {QUERIES}," in line
    assert f"llm_requests {QUERIES * 2} (follows)" in line and "prm_requests 3 (set)" in line
    assert f"tool_calls {QUERIES * 2} (follows)" in line and "sandbox_pool 4 (backend default)" in line
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["limits"]["llm_requests"] == {"value": QUERIES * 2, "source": "follows"}
    assert recorded["limits"]["prm_requests"] == {"value": 3, "source": "set"}
    assert recorded["config"]["llm"]["max_concurrency"] == QUERIES * 2


def test_limits_set_in_the_config_file_or_environment_stay(tmp_path):
    config_file = tmp_path / "agent.yaml"
    config_file.write_text("llm:\n  max_concurrency: 5\ngateway:\n  concurrency: 7\nsandbox:\n  options:\n    pool_size: 2\n")
    config, limits = follow_concurrency(load_config(config_file, environ={"OPENAI_BASE_URL": "http://x/v1"}), 10)
    assert (config.llm.max_concurrency, config.gateway.concurrency, config.rm.max_connections) == (5, 7, 10)
    assert limits["llm_requests"] == {"value": 5, "source": "set"}
    assert limits["prm_requests"] == {"value": 10, "source": "follows"}
    assert limits["sandbox_pool"] == {"value": 2, "source": "set"}
    assert limits_line(limits).startswith("limits: queries 10, llm_requests 5 (set), prm_requests 10 (follows)")


def test_a_lower_concurrency_lowers_the_followed_limits():
    config, limits = follow_concurrency(load_config(environ={}), 1)
    assert (config.llm.max_concurrency, config.rm.max_connections, config.gateway.concurrency) == (2, 1, 2)
    assert limits["tool_calls"] == {"value": 2, "source": "follows"}


def test_a_container_per_query_pool_follows_the_runs_concurrency_and_queries():
    def limits_for(options: dict[str, Any], concurrency: int, queries: int) -> tuple[dict[str, Any], dict[str, Any]]:
        config = load_config(overrides={"sandbox": {"backend": "docker", "options": options}}, environ={})
        followed, limits = follow_concurrency(config, concurrency, queries)
        return dict(followed.sandbox.options), limits["sandbox_pool"]

    assert limits_for({"container_per": "query"}, 8, 64) == (
        {"container_per": "query", "pool_size": 8, "sessions": 64}, {"value": 8, "source": "follows"}
    )
    assert limits_for({"container_per": "query"}, 32, 20)[1] == {"value": 20, "source": "follows"}
    assert limits_for({"container_per": "query", "pool_size": 3}, 32, 20) == (
        {"container_per": "query", "pool_size": 3, "sessions": 20}, {"value": 3, "source": "set"}
    )
    assert limits_for({"container_per": "execution"}, 32, 20) == ({"container_per": "execution"}, {"value": 4, "source": "backend default"})
