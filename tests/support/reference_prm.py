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


class ReferencePrm:
    """`async with ReferencePrm(judge) as prm:` serves at `prm.url`."""

    def __init__(self, judge: Callable[[str], float], *, hold: bool = False) -> None:
        self.judge = judge
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.released = asyncio.Event()
        self.arrived = asyncio.Condition()
        if not hold:
            self.released.set()
        self.url = ""
        app = web.Application()
        app.add_routes([web.post("/generate", self._generate)])
        self._runner = web.AppRunner(app, access_log=None)

    async def __aenter__(self) -> ReferencePrm:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.released.set()
        await self._runner.cleanup()

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
