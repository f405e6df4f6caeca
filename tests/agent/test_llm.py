"""The policy client against the stand-in OpenAI server."""

import socket

import pytest

from agent.config import LLMConfig
from agent.llm import LLMClient
from codetool_kernel.errors import EndpointError
from tests.support.openai_stub import OpenAIStub


def _echo_policy(body):
    return [f"answer {i} [Step 1 Finished] trailing" for i in range(body.get("n", 1))]


def _client(base_url: str, **overrides) -> LLMClient:
    settings = {"base_url": base_url, "api_key": "k", "model": "stub", "max_retries": 3} | overrides
    return LLMClient(LLMConfig(**settings))


async def test_n_samples_with_stop_and_usage():
    async with OpenAIStub(_echo_policy) as stub:
        client = _client(stub.base_url)
        samples = await client.sample([{"role": "user", "content": "two words"}], n=3, stop=["[Step 1 Finished]"])
        await client.aclose()
    assert samples.texts == ["answer 0 ", "answer 1 ", "answer 2 "]
    assert samples.usage.requests == 1 and samples.usage.prompt_tokens == 2 and samples.usage.completion_tokens == 6
    request = stub.requests[0]
    assert request["n"] == 3 and request["stop"] == ["[Step 1 Finished]"]
    assert request["temperature"] == 0.9 and request["top_p"] == 0.95 and request["max_tokens"] == 2048


async def test_tops_up_when_server_returns_fewer_choices():
    async with OpenAIStub(lambda body: ["one"], max_choices=1) as stub:
        client = _client(stub.base_url)
        samples = await client.sample([{"role": "user", "content": "q"}], n=4)
        await client.aclose()
    assert len(samples.texts) == 4
    assert len(stub.requests) == 4
    assert samples.usage.requests == 4


async def test_retries_on_429_and_5xx():
    async with OpenAIStub(lambda body: ["ok"]) as stub:
        stub.fail_next(429)
        stub.fail_next(503)
        client = _client(stub.base_url)
        samples = await client.sample([{"role": "user", "content": "q"}], n=1)
        await client.aclose()
    assert samples.texts == ["ok"]
    assert len(stub.requests) == 3


async def test_gives_up_with_one_clear_line():
    async with OpenAIStub(lambda body: ["ok"]) as stub:
        stub.fail_next(500, count=10)
        client = _client(stub.base_url, max_retries=1)
        with pytest.raises(EndpointError, match="answered HTTP 500"):
            await client.sample([{"role": "user", "content": "q"}], n=1)
        await client.aclose()


async def test_unreachable_endpoint_says_what_to_set():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = _client(f"http://127.0.0.1:{port}/v1", max_retries=0)
    with pytest.raises(EndpointError, match="OPENAI_BASE_URL") as info:
        await client.sample([{"role": "user", "content": "q"}], n=1)
    assert "\n" not in str(info.value)
    await client.aclose()


async def test_an_endpoint_behind_a_proxy_is_reached_through_it(monkeypatch):
    async with OpenAIStub(_echo_policy) as proxy:  # the stand-in answers what the proxy is sent
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.rsplit("/v1", 1)[0])
        client = _client("http://policy.invalid/v1")
        samples = await client.sample([{"role": "user", "content": "q"}], n=1)
        await client.aclose()
    assert samples.texts == ["answer 0 [Step 1 Finished] trailing"] and len(proxy.requests) == 1
