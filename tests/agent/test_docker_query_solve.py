"""A query solved on the `docker` backend runs all its candidates in one container."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import docker
import pytest

from agent import CodeToolAgent
from agent.config import load_config
from codetool_kernel.nodepaths import STATUS_OK
from sandbox import AUDIT_DB_NAME, AuditStore
from sandbox.docker_pool import OWNER_LABEL
from sandbox.owner import owner_token
from tests.sandbox.conftest import require_docker
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import coppola_policy

pytestmark = pytest.mark.docker


def _containers_started(since: float, until: float) -> set[str]:
    """Ids of the containers this process's sandboxes started in [since, until], as the engine saw it."""
    client = docker.from_env()
    try:
        filters = {"type": "container", "event": "start", "label": f"{OWNER_LABEL}={owner_token()}"}
        return {event["id"] for event in client.events(since=f"{since:.6f}", until=f"{until:.6f}", filters=filters, decode=True)}
    finally:
        client.close()


async def test_one_container_serves_every_candidate_of_a_query(tmdb_provider, tmdb_queries, tmp_path: Path) -> None:
    require_docker()
    query = tmdb_provider.load_queries(str(tmdb_queries), ids=["q0"])[0]
    toolset = tmdb_provider.toolset_for(query)
    async with OpenAIStub(coppola_policy) as stub:
        config = load_config(
            overrides={
                "llm": {"base_url": stub.base_url, "api_key": "test", "model": "stub-model", "max_retries": 0},
                "search": {"n": 2},
                "sandbox": {"backend": "docker", "options": {"pool_size": 1}, "limits": {"timeout_s": 20}},
                "audit_db": str(tmp_path / AUDIT_DB_NAME),
            },
            environ={},
        )
        since = time.time()
        async with CodeToolAgent(config) as agent:
            trajectory = await agent.solve(query, toolset)
        until = time.time()

    executed = [node for node in trajectory.nodes if node.code]
    assert trajectory.stop_reason == "finished" and len(executed) == 6
    assert all(node.status == STATUS_OK for node in executed), [node.error for node in executed]
    started = await asyncio.to_thread(_containers_started, since, until)
    assert len(started) == 2  # the warm pool's one, then its refill once the query took it: not one per candidate
    with AuditStore(tmp_path / AUDIT_DB_NAME) as store:  # the query's session is audited like `execute`
        assert sorted(e.node for e in store.executions()) == sorted(node.path for node in executed)
