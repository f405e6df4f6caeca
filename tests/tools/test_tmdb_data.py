"""TMDB out of the box: the shipped spec, simulated answers labelled, real answers recorded and replayed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from codetool_kernel.protocol import ToolRequest, ToolResponse
from tests.tools.conftest import TMDB_SPEC
from tools import Query, ToolGateway, create_provider, load_tmdb_spec
from tools.http_server import EmbeddedServer
from tools.tmdb import TMDB_TOKEN_MASK

BASE = "https://api.themoviedb.org/3"
REAL_TOKEN = "eyJhbGciOiJIUzI1NiJ9.real-tmdb-token-for-the-stand-in"
QUERY = Query(query_id="q", text="who directed Titanic", api_list=("GET_search_movie", "GET_movie_movie_id_credits"))


class RealTmdbStandIn(EmbeddedServer):
    """Stands where api.themoviedb.org would: real answers for two endpoints, 401 without the token."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, str]] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/3/search/movie", self._search)
        app.router.add_get("/3/movie/{movie_id}/credits", self._credits)
        return app

    def _authorised(self, request: web.Request) -> bool:
        self.received.append((request.path_qs, request.headers.get("Authorization", "")))
        return request.headers.get("Authorization") == f"Bearer {REAL_TOKEN}"

    async def _search(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"status_code": 7}, status=401)
        hit = {"id": 597, "title": request.query["query"], "release_date": "1997-11-18"}
        # a real API that reflects the caller's credentials must not get them into the record
        return web.json_response({"page": 1, "results": [hit], "total_results": 1, "debug": request.headers["Authorization"]})

    async def _credits(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"status_code": 7}, status=401)
        crew = [{"id": 2710, "name": "James Cameron", "job": "Director"}]
        return web.json_response({"id": int(request.match_info["movie_id"]), "cast": [], "crew": crew})


@pytest.fixture
async def stand_in() -> AsyncIterator[RealTmdbStandIn]:
    async with RealTmdbStandIn() as server:
        yield server


async def _ask(provider_options: dict[str, Any], *paths: tuple[str, dict[str, str]]) -> list[ToolResponse]:
    async with create_provider("tmdb", **provider_options) as provider, ToolGateway() as gateway:
        toolset = provider.toolset_for(QUERY)
        session = gateway.session(toolset)
        return [
            await session(ToolRequest(method="GET", url=BASE + path, params=params, headers=toolset.preset["headers"]))
            for path, params in paths
        ]


SEARCH = ("/search/movie", {"query": "Titanic"})
CREDITS = ("/movie/597/credits", {})


def test_the_spec_ships_with_the_package_with_its_licence() -> None:
    shipped = load_tmdb_spec()
    assert [api.model_dump() for api in shipped] == [api.model_dump() for api in load_tmdb_spec(TMDB_SPEC)]
    assert len(shipped) == 54
    notice = resources.files("tools").joinpath("data/TMDB_SPEC_LICENSE.txt").read_text()
    assert "MIT License" in notice and "Copyright (c) 2023 Yifan Song" in notice and "RestGPT" in notice
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert "data/tmdb_spec.json.gz" in pyproject and "data/TMDB_SPEC_LICENSE.txt" in pyproject


async def test_virtual_answers_are_labelled_simulated_on_every_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMDB_API_TOKEN", raising=False)
    search, again = await _ask({}, SEARCH, SEARCH)
    assert search.status == 200 and json.loads(search.body)["results"][0]["title"] == "Titanic"
    assert search.call is not None and search.call.simulated
    assert again.call is not None and again.call.memo_hit and again.call.simulated
    assert "X-CodeTool-Source" not in search.headers


async def test_real_answers_are_recorded_and_replayed_offline(
    stand_in: RealTmdbStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TMDB_API_TOKEN", raising=False)
    cache = tmp_path / "cache"
    live = {"token": REAL_TOKEN, "real_url": f"{stand_in.base_url}/3", "cache_dir": str(cache)}
    search, credits = await _ask(live, SEARCH, CREDITS)
    assert [call for call, _ in stand_in.received] == ["/3/search/movie?query=Titanic", "/3/movie/597/credits"]
    assert all(auth == f"Bearer {REAL_TOKEN}" for _, auth in stand_in.received)
    assert search.call is not None and not search.call.simulated and search.status == 200
    assert REAL_TOKEN not in search.body and TMDB_TOKEN_MASK in search.body

    records = cache / "TMDB" / "tmdb_for_TMDB"
    assert sorted(path.name for path in records.iterdir()) == ["get_movie_movie_id_credits.json", "get_search_movie.json"]
    recorded = json.loads((records / "get_search_movie.json").read_text())
    assert list(recorded) == [str({"query": "Titanic"})]
    assert REAL_TOKEN not in json.dumps(recorded)

    offline = {"cache_dir": str(cache)}
    stand_in.received.clear()
    first = await _ask(offline, SEARCH, CREDITS, ("/search/movie", {"query": "Avatar"}))
    second = await _ask(offline, SEARCH, CREDITS)
    assert stand_in.received == []
    assert [json.loads(r.body) for r in first[:2]] == [json.loads(search.body), json.loads(credits.body)]
    assert [r.body for r in second] == [r.body for r in first[:2]]
    assert [r.call.simulated for r in first if r.call] == [False, False, True]
    assert json.loads(first[1].body)["crew"][0]["name"] == "James Cameron"


async def test_without_a_cache_calls_go_straight_to_the_real_api(stand_in: RealTmdbStandIn) -> None:
    [search] = await _ask({"token": REAL_TOKEN, "real_url": f"{stand_in.base_url}/3"}, SEARCH)
    assert search.status == 200 and search.call is not None and not search.call.simulated
    assert stand_in.received == [("/3/search/movie?query=Titanic", f"Bearer {REAL_TOKEN}")]
