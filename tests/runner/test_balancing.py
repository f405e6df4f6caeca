"""Policy requests spread over several endpoints by requests in flight."""

from __future__ import annotations

import asyncio

from agent.config import LLMConfig
from agent.runner import BalancedLLMClient
from tests.support.openai_stub import OpenAIStub

MESSAGES = [{"role": "user", "content": "hello"}]


async def test_requests_go_to_the_least_busy_endpoint():
    gate = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_policy(body):
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(30)
        return ["slow"]

    async with OpenAIStub(slow_policy) as slow, OpenAIStub(lambda body: ["fast"]) as fast:
        config = LLMConfig(base_url="http://unused/v1", api_key="k", model="stub-model", max_retries=0)
        async with BalancedLLMClient(config, [slow.base_url, fast.base_url]) as client:
            held = asyncio.create_task(client.sample(MESSAGES, n=1))
            while not slow.requests:
                await asyncio.sleep(0.01)
            answers = [await client.sample(MESSAGES, n=1) for _ in range(4)]
            gate.set()
            first = await held
            assert [a.texts for a in answers] == [["fast"]] * 4 and first.texts == ["slow"]
            assert client.sent == [1, 4] and len(fast.requests) == 4


async def test_idle_endpoints_take_turns():
    async with OpenAIStub(lambda body: ["a"]) as first, OpenAIStub(lambda body: ["b"]) as second:
        config = LLMConfig(base_url="http://unused/v1", api_key="k", model="stub-model", max_retries=0)
        async with BalancedLLMClient(config, [first.base_url, second.base_url]) as client:
            texts = [(await client.sample(MESSAGES, n=1)).texts[0] for _ in range(4)]
    assert texts == ["a", "b", "a", "b"]
    assert len(first.requests) == len(second.requests) == 2
