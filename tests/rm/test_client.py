"""RewardModelClient against the real server, a server that is not a PRM, and nothing at all."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from codetool_kernel.errors import RewardModelError
from rm import RewardModelClient, ServerConfig
from tests.rm.helpers import conversations, hf_config, running_server
from tests.support.openai_stub import OpenAIStub


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_one_request_scores_all_candidates_of_a_step(tiny_lm_dir: Path) -> None:
    async with running_server("hf", hf_config(tiny_lm_dir)) as (url, scorer):
        async with RewardModelClient(url) as client:
            results = await client.score(conversations(4))
            direct = await scorer.score(conversations(4))
            assert await client.score([]) == []
        assert scorer.counters()["requests"] == 2  # the client's one /score plus the direct call
    assert [r.score for r in results] == pytest.approx([r.score for r in direct], abs=1e-6)
    assert [r.yes_logit for r in results] == pytest.approx([r.yes_logit for r in direct], abs=1e-5)


async def test_nothing_listening_is_one_clear_error_after_the_retries() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with RewardModelClient(url, retries=2, backoff_s=0.01) as client:
        with pytest.raises(RewardModelError) as caught:
            await client.score(conversations(1))
    message = str(caught.value)
    assert message.startswith(f"PRM at {url} cannot be reached") and message.endswith("(3 attempts)")
    assert "\n" not in message


async def test_a_server_that_is_not_a_prm_is_refused_without_retrying() -> None:
    async with OpenAIStub(lambda _: ["yes"]) as stub:
        url = stub.base_url.removesuffix("/v1")
        async with RewardModelClient(url, retries=3, backoff_s=5.0) as client:
            with pytest.raises(RewardModelError, match=r"^PRM at .* refused /score: HTTP 404"):
                await client.score(conversations(1))


async def test_a_request_the_server_rejects_is_not_retried(tiny_lm_dir: Path) -> None:
    async with running_server("hf", hf_config(tiny_lm_dir), ServerConfig(port=0, max_items=2)) as (url, _):
        async with RewardModelClient(url, retries=3, backoff_s=5.0) as client:
            with pytest.raises(RewardModelError, match="HTTP 400: 3 items in one request, at most 2"):
                await client.score(conversations(3))
            with pytest.raises(RewardModelError, match="HTTP 400: invalid request: items.0.messages.0.role"):
                await client.score([[{"role": "judge", "content": "x"}]])


async def test_the_client_must_be_entered_first() -> None:
    client = RewardModelClient("http://127.0.0.1:1")
    with pytest.raises(RewardModelError, match="outside `async with`"):
        await client.score(conversations(1))
