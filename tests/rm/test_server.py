"""The aiohttp server over the hf backend, spoken to over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rm import ServerConfig, two_way_softmax
from tests.rm.helpers import conversations, hf_config, running_server


async def _post(url: str, body: str | bytes | dict[str, Any]) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body) if isinstance(body, dict) else body
    async with aiohttp.ClientSession() as session, session.post(url, data=data) as response:
        return response.status, await response.json(content_type=None)


async def _health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/health") as response:
        assert response.status == 200
        return await response.json()


def _items(count: int) -> dict[str, Any]:
    return {"items": [{"messages": c} for c in conversations(count)]}


async def test_score_answers_probabilities_and_their_logits(tiny_lm_dir: Path) -> None:
    async with running_server("hf", hf_config(tiny_lm_dir)) as (url, _):
        status, body = await _post(f"{url}/score", _items(3))
    assert status == 200
    assert len(body["scores"]) == len(body["logits"]) == 3
    for score, (yes, no) in zip(body["scores"], body["logits"], strict=True):
        assert 0.0 <= score <= 1.0
        assert score == pytest.approx(two_way_softmax(yes, no), abs=1e-12)


async def test_generate_keeps_the_reference_contract_and_matches_score(tiny_lm_dir: Path) -> None:
    items = conversations(3)
    async with running_server("hf", hf_config(tiny_lm_dir)) as (url, _):
        _, batch = await _post(f"{url}/score", {"items": [{"messages": c} for c in items]})
        singles = [await _post(f"{url}/generate", {"index": i, "messages": c}) for i, c in enumerate(items)]
    for (status, body), batched in zip(singles, batch["scores"], strict=True):
        assert status == 200 and set(body) == {"response"}
        assert body["response"] == pytest.approx(batched, abs=1e-5)


async def test_health_reports_model_backend_and_counters(tiny_lm_dir: Path) -> None:
    async with running_server("hf", hf_config(tiny_lm_dir)) as (url, _):
        await _post(f"{url}/score", _items(4))
        health = await _health(url)
    assert health["status"] == "ok" and health["backend"] == "hf" and health["model"] == "tiny"
    assert health["counters"]["requests"] == 1 and health["counters"]["items"] == 4
    assert health["counters"]["forward_passes"] == 1


async def test_concurrent_clients_are_batched_together(tiny_lm_dir: Path) -> None:
    async with running_server("hf", hf_config(tiny_lm_dir, max_batch=64, window_ms=30)) as (url, _):
        answers = await asyncio.gather(*(_post(f"{url}/score", _items(2)) for _ in range(10)))
        counters = (await _health(url))["counters"]
    assert all(status == 200 and len(body["scores"]) == 2 for status, body in answers)
    assert counters["requests"] == 10
    assert counters["forward_passes"] < counters["requests"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"items": [', "Invalid JSON"),
        (b"[1, 2]", "Input should be an object"),
        ({"items": []}, "items: List should have at least 1 item"),
        ({"items": [{}]}, "items.0.messages: Field required"),
        ({"items": [{"messages": []}]}, "items.0.messages: List should have at least 1 item"),
        ({"items": [{"messages": [{"role": "robot", "content": "x"}]}]}, "items.0.messages.0.role: Input should be"),
        ({"items": [{"messages": [{"role": "user", "content": 5}]}]}, "items.0.messages.0.content: Input should be a valid string"),
        (_items(5), "5 items in one request, at most 4"),
    ],
)
async def test_bad_score_requests_get_400_with_one_line(tiny_lm_dir: Path, body: Any, message: str) -> None:
    async with running_server("hf", hf_config(tiny_lm_dir), ServerConfig(port=0, max_items=4)) as (url, scorer):
        status, answer = await _post(f"{url}/score", body)
        assert scorer.counters()["items"] == 0
    assert status == 400
    assert message in answer["error"] and "\n" not in answer["error"]


async def test_bad_generate_request_and_wrong_routes(tiny_lm_dir: Path) -> None:
    async with running_server("hf", hf_config(tiny_lm_dir)) as (url, _):
        status, answer = await _post(f"{url}/generate", {"index": 0})
        assert (status, answer["error"]) == (400, "invalid request: messages: Field required")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/score") as response:
                assert response.status == 405 and "error" in await response.json()
            async with session.get(f"{url}/nowhere") as response:
                assert response.status == 404 and "error" in await response.json()


async def test_an_oversized_body_gets_413(tiny_lm_dir: Path) -> None:
    huge = {"items": [{"messages": [{"role": "user", "content": "x" * 5000}]}]}
    async with running_server("hf", hf_config(tiny_lm_dir), ServerConfig(port=0, max_body_bytes=4096)) as (url, _):
        status, answer = await _post(f"{url}/score", huge)
    assert status == 413 and "body size" in answer["error"]


async def _wait_for(url: str, counter: str, value: int) -> None:
    async with asyncio.timeout(30):
        while (await _health(url))["counters"][counter] != value:
            await asyncio.sleep(0.01)


async def test_a_full_queue_answers_503_and_keeps_what_it_queued(tiny_lm_dir: Path) -> None:
    # A long window holds a part-filled batch back, so the queue state is known when the next request lands.
    config = hf_config(tiny_lm_dir, max_batch=4, window_ms=60_000, max_queue=4)
    async with running_server("hf", config) as (url, _):
        waiting = asyncio.ensure_future(_post(f"{url}/score", _items(3)))
        await _wait_for(url, "queued_items", 3)
        status, answer = await _post(f"{url}/score", _items(2))
        assert status == 503 and "queue is full" in answer["error"]
        filler = await _post(f"{url}/score", _items(1))  # completes the batch of 4
        assert filler[0] == 200 and (await waiting)[0] == 200
        counters = (await _health(url))["counters"]
    assert counters["rejected_items"] == 2 and counters["forward_passes"] == 1 and counters["max_batch"] == 4


async def _raw(url: str, payload: bytes) -> None:
    """Send raw bytes and hang up without reading the answer."""
    host, port = url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_clients_that_hang_up_do_not_break_the_server(tiny_lm_dir: Path) -> None:
    body = json.dumps(_items(2)).encode()
    head = f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    async with running_server("hf", hf_config(tiny_lm_dir, window_ms=0)) as (url, _):
        await _raw(url, head.encode() + body[: len(body) // 2])  # gone mid-body
        await _raw(url, head.encode() + body)  # gone while its request is being scored
        await _wait_for(url, "items", 2)
        status, answer = await _post(f"{url}/score", _items(3))
        assert status == 200 and len(answer["scores"]) == 3
        assert (await _health(url))["counters"]["items"] == 5
