"""A PRM server speaking only the reference release's contract, for tests.

`POST /generate` takes `{"index", "messages"}` (one candidate) and answers `{"response": p}`; there is
no `/score` and no `/health` (404, as a Flask app answers an unknown route). The judge is a plain
function of the candidate's text. The server counts requests and the most that were in flight at once;
`hold` keeps answers back until released, so a test can see how many requests arrive together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tools.http_server import EmbeddedServer


class ReferencePrm(EmbeddedServer):
    """`async with ReferencePrm(judge) as prm:` serves at `prm.url`."""

    def __init__(self, judge: Callable[[str], float], *, hold: bool = False) -> None:
        super().__init__()
        self.url = ""
        self.judge = judge
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.released = asyncio.Event()
        self.arrived = asyncio.Condition()
        if not hold:
            self.released.set()

    async def start(self) -> None:
        await super().start()
        self.url = self.base_url  # kept after close, for messages that name it

    def build_app(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.post("/generate", self._generate)])
        return app

    async def aclose(self) -> None:
        self.released.set()
        await super().aclose()

    async def wait_for_arrivals(self, count: int) -> None:
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.requests) >= count)

    async def _generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        if set(body) != {"index", "messages"} or not isinstance(body["messages"], list):
            return web.json_response({"error": "expected index and messages"}, status=400)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        async with self.arrived:
            self.requests.append(body)
            self.arrived.notify_all()
        try:
            await self.released.wait()
            return web.json_response({"response": self.judge(body["messages"][-1]["content"])})
        finally:
            self.in_flight -= 1
