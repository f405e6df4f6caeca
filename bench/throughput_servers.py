"""The simulated model servers of `bench/throughput.py`, in a process of their own.

A scripted OpenAI-compatible server (`tests/support/openai_stub.py`) answers every completion
after `latency_s`, and a PRM server speaking `POST /score` (`rm/schemas.py`) answers every batch
after `prm_latency_s`; both wait with `asyncio.sleep`, so requests overlap as on a busy vLLM.
They run in a child process so that their CPU and memory are not counted as ours.

The policy solves each StableToolBench query in `chain_steps(query)` steps: one call of the
query's i-th API per step (default arguments, through the virtual API server), then an answer.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from rm.schemas import ScoreRequest
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import STB_URL, stb_key_from, step, step_of
from tools.http_server import EmbeddedServer

MODEL = "bench-policy"


def chain_steps(api_count: int, max_steps: int) -> int:
    """Steps of a query with `api_count` APIs: one call per API (at most `max_steps - 1`), then the answer."""
    return min(max(api_count, 1), max_steps - 1) + 1


@dataclass(frozen=True)
class ChainQuery:
    text: str
    apis: list[dict[str, Any]]
    """`api_list` entries: category_name, tool_name, api_name, required_parameters."""


class ChainPolicy:
    """Step k < last calls API k of the query; the last step prints the answer."""

    def __init__(self, queries: list[ChainQuery], max_steps: int) -> None:
        self.queries, self.max_steps = queries, max_steps

    def query_of(self, body: dict[str, Any]) -> ChainQuery:
        asked = next(m["content"] for m in body["messages"] if m["role"] == "user")
        return next(query for query in self.queries if query.text in asked)

    def __call__(self, body: dict[str, Any]) -> list[str]:
        query = self.query_of(body)
        number, last = step_of(body), chain_steps(len(query.apis), self.max_steps)
        if number >= last:
            code = f"print('Answer after {last - 1} API calls: the data above answers the query.')"
            return [step(number, "Answer", code, finished=True)]
        api = query.apis[number - 1]
        arguments = {p["name"]: p.get("default") or "x" for p in api.get("required_parameters") or ()}
        payload = {
            "category": api["category_name"], "tool_name": api["tool_name"], "api_name": api["api_name"],
            "tool_input": arguments, "strip": "",
        }  # fmt: skip
        code = (
            f"import requests\nKEY = {stb_key_from(body)!r}\n"
            f"reply = requests.post({STB_URL!r}, json={{**{payload!r}, 'toolbench_key': KEY}}).json()\n"
            f"print('{api['api_name']}:', str(reply)[:160])"
        )
        return [step(number, f"Call {api['api_name']}", code)]


class LatencyPrm(EmbeddedServer):
    """`POST /score` after `latency_s` per batch; scores vary with the item so that the choice is real."""

    def __init__(self, latency_s: float) -> None:
        super().__init__()
        self.url = ""
        self.latency_s = latency_s
        self.requests = 0
        self.items = 0

    async def start(self) -> None:
        await super().start()
        self.url = self.base_url  # kept after close, for messages that name it

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/score", self._score)
        app.router.add_get("/health", self._health)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": "bench-prm", "backend": "latency", "counters": {}})

    async def _score(self, request: web.Request) -> web.Response:
        try:
            batch = ScoreRequest.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return web.json_response({"error": str(exc).splitlines()[0]}, status=400)
        self.requests += 1
        self.items += len(batch.items)
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        scores = [0.5 + 0.4 * math.sin(len(item.messages[-1].content)) for item in batch.items]
        logits = [[math.log(s / (1 - s)), 0.0] for s in scores]
        return web.json_response({"scores": scores, "logits": logits})


def _serve(conn: Connection, queries: list[ChainQuery], max_steps: int, latency_s: float, prm_latency_s: float) -> None:
    async def main() -> None:
        policy = ChainPolicy(queries, max_steps)
        async with OpenAIStub(policy, model=MODEL, latency_s=latency_s) as llm, LatencyPrm(prm_latency_s) as prm:
            conn.send((llm.base_url, prm.url))
            while await asyncio.to_thread(conn.recv) == "counters":
                conn.send({"llm_requests": len(llm.requests), "llm_peak_in_flight": llm.peak_in_flight,
                           "prm_requests": prm.requests, "prm_items": prm.items})  # fmt: skip
                llm.requests.clear()
                llm.peak_in_flight = prm.requests = prm.items = 0

    asyncio.run(main())


class ModelServers:
    """`with ModelServers(queries, ...) as servers:` then `servers.llm_url`, `servers.prm_url`, `servers.counters()`."""

    def __init__(self, queries: list[ChainQuery], max_steps: int, latency_s: float, prm_latency_s: float) -> None:
        self._args = (queries, max_steps, latency_s, prm_latency_s)
        self.llm_url = self.prm_url = ""
        self.pid: int | None = None

    def __enter__(self) -> ModelServers:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, *self._args), daemon=True)
        self._process.start()
        self.pid = self._process.pid
        if not self._conn.poll(60):
            raise RuntimeError("the simulated model servers did not start within 60 s")
        self.llm_url, self.prm_url = self._conn.recv()
        return self

    def counters(self) -> dict[str, int]:
        """Requests served since the last call (and the most completions in flight at once)."""
        self._conn.send("counters")
        return dict(self._conn.recv())

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()


def chain_queries(raw: list[dict[str, Any]]) -> list[ChainQuery]:
    return [ChainQuery(str(q["query"]), list(q.get("api_list") or ())) for q in raw]


def load_raw_queries(path: str, limit: int) -> list[dict[str, Any]]:
    return json.loads(open(path, encoding="utf-8").read())[:limit]
