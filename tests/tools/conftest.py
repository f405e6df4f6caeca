"""Shared pieces of the tools tests: data paths and a real loopback upstream that echoes."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.tools.notes_api import NotesApi
from tools.http_server import EmbeddedServer

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
STB_G1 = DATA / "stabletoolbench" / "filter_test_instruction" / "G1_instruction.json"
TMDB_SPEC = DATA / "restbench" / "tmdb_spec.json"
TMDB_QUERIES = DATA / "restbench" / "tmdb_queries.json"


class EchoUpstream(EmbeddedServer):
    """A fake upstream API: `/echo/...` answers what it received and echoes the auth header back."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.reached = asyncio.Event()
        self.reach_count = 2
        self.gate = asyncio.Event()
        self.gate.set()
        self.closing = asyncio.Event()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/big/{size}", self._big)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_route("*", "/never", self._never)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        return app

    async def _record(self, request: web.Request) -> dict[str, Any]:
        raw = await request.text()
        entry = {
            "method": request.method,
            "path": request.path,
            "query": [[k, v] for k, v in request.query.items()],
            "headers": dict(request.headers),
            "body": raw,
        }
        self.received.append(entry)
        return entry

    async def _echo(self, request: web.Request) -> web.Response:
        entry = await self._record(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight >= self.reach_count:
            self.reached.set()
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        headers = {"X-Echo-Authorization": request.headers.get("Authorization", "")}
        return web.json_response(entry, headers=headers)

    async def _big(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(text="x" * int(request.match_info["size"]))

    async def _status(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.json_response({"status": "scripted"}, status=int(request.match_info["code"]))

    async def _never(self, request: web.Request) -> web.Response:
        await self._record(request)
        await self.closing.wait()
        return web.Response(status=503)

    async def aclose(self) -> None:
        self.closing.set()
        self.gate.set()
        await super().aclose()


@pytest.fixture
async def echo() -> AsyncIterator[EchoUpstream]:
    async with EchoUpstream() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def body_of(response: Any) -> Any:
    return json.loads(response.body)


API_KEY = "key-5f2c9a71e04b4d8cb1e3"
TOKEN = "tok-90a7d3c2f81e4b6a9d55"


@pytest.fixture
async def notes_api() -> AsyncIterator[NotesApi]:
    """The notes API on loopback, knowing `API_KEY` and `TOKEN`."""
    async with NotesApi(api_key=API_KEY, token=TOKEN) as server:
        yield server
