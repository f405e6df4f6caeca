"""An embedded stand-in for the TMDB API: replays recorded answers, else simulates them from the spec.

It matches each GET against the spec's URL templates (literal paths before templated ones)
and checks the bearer token like the real API (401 otherwise). An answer comes from the
response cache when it holds one for the endpoint and its inputs (`recorded`); otherwise it
is made up (`simulated`): the endpoint's response example with the request's own ids and page
filled in, or a sample drawn from the schema when there is no example. Search endpoints answer
one result named after the query, with an id derived from it; later detail calls with that id
get the same name back, so a search-then-details chain reads consistently. Every answer is
deterministic, and each says where it came from in the `X-CodeTool-Source` header.

With `live_url` (a real TMDB token is known) it is a recording proxy instead: every call goes
to the real API with the caller's bearer, and each successful GET answer of a known endpoint
is written to the cache, so later runs without a token replay it offline.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import random
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tools.http_server import SOURCE_HEADER, EmbeddedServer
from tools.response_cache import ResponseCache
from tools.schema_shapes import sample_value
from tools.scrubbing import SecretScrubber
from tools.toolset import ApiSpec

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_NAME_FIELDS = ("name", "title", "original_title", "original_name")
_MAX_REMEMBERED_NAMES = 10_000
_LIVE_MAX_BYTES = 16 * 1024 * 1024
_LIVE_TIMEOUT_S = 30.0
TMDB_TOKEN_MASK = "MASKED_TMDB_TOKEN"
"""What generated code sees in place of the bearer token."""
CACHE_CATEGORY = "TMDB"
CACHE_TOOL = "tmdb"
"""Recorded answers live in `<cache>/TMDB/tmdb_for_TMDB/<endpoint>.json` (StableToolBench's layout)."""
UNAUTHORIZED = {
    "status_code": 7,
    "status_message": "Invalid API key: You must be granted a valid key.",
    "success": False,
}
NOT_FOUND = {"status_code": 34, "status_message": "The resource you requested could not be found.", "success": False}


class VirtualTmdbServer(EmbeddedServer):
    """`async with VirtualTmdbServer(apis, token=...) as srv:`; it serves each API's URL path
    (`/3/search/person` for `https://api.themoviedb.org/3/search/person`) under `srv.base_url`.

    `cache_dir` is the response cache to replay (and, with `live_url`, to record into);
    `live_url` is the real API (`https://api.themoviedb.org/3`) standing behind `base_path`."""

    def __init__(
        self,
        apis: Sequence[ApiSpec],
        *,
        token: str,
        cache_dir: str | None = None,
        live_url: str | None = None,
        base_path: str = "/3",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.token = token
        self.cache = ResponseCache(cache_dir) if cache_dir else None
        self.live_url = live_url.rstrip("/") if live_url else None
        self._base_path = base_path.rstrip("/")
        self._routes = sorted(
            ((api, _path_regex(api.url)) for api in apis if api.method == "GET"),
            key=lambda route: (len(_PLACEHOLDER.findall(route[0].url)), -len(route[0].url)),
        )
        self._names: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._http: aiohttp.ClientSession | None = None
        self._scrubber = SecretScrubber({TMDB_TOKEN_MASK: token})

    async def start(self) -> None:
        if self.live_url is not None and self._http is None:
            self._http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        await super().start()

    async def aclose(self) -> None:
        await super().aclose()
        if self._http is not None:
            await self._http.close()
            self._http = None

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        if self.live_url is not None:
            return await self._forward(request)
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            return web.json_response(UNAUTHORIZED, status=401)
        if request.method != "GET":
            return web.json_response({**NOT_FOUND, "status_message": "Only GET is served here."}, status=405)
        found = self._match(request.path)
        if found is None:
            return web.json_response(NOT_FOUND, status=404)
        api, values = found
        params = dict(request.query)
        if self.cache is not None:
            recorded = await self.cache.lookup(CACHE_CATEGORY, CACHE_TOOL, api.name, _tool_input(values, params))
            if isinstance(recorded, dict) and not recorded.get("error") and "response" in recorded:
                return web.json_response(recorded["response"], headers={SOURCE_HEADER: "recorded"})
        if "/search/" in api.url and not params.get("query", "").strip():
            return web.json_response({"errors": ["query must be provided"]}, status=422)
        return web.json_response(self._answer(api, values, params), headers={SOURCE_HEADER: "simulated"})

    async def _forward(self, request: web.Request) -> web.Response:
        """Pass the call to the real API; record a successful GET of a known endpoint."""
        assert self._http is not None and self.live_url is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "accept", "content-type")}
        try:
            async with self._http.request(
                request.method,
                self.live_url + request.rel_url.path_qs.removeprefix(self._base_path),
                headers=headers,
                data=await request.read() or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=_LIVE_TIMEOUT_S),
            ) as upstream:
                raw = bytearray()
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    raw += chunk
                    if len(raw) > _LIVE_MAX_BYTES:
                        break
                status, content_type = upstream.status, upstream.headers.get("Content-Type", "application/json")
        except (aiohttp.ClientError, TimeoutError) as exc:
            message = f"the real TMDB API could not be reached ({type(exc).__name__})"
            return web.json_response({**NOT_FOUND, "status_code": 0, "status_message": message}, status=502)
        if len(raw) > _LIVE_MAX_BYTES:
            message = f"the real TMDB API answered more than {_LIVE_MAX_BYTES} bytes"
            return web.json_response({**NOT_FOUND, "status_code": 0, "status_message": message}, status=502)
        found = self._match(request.path) if request.method == "GET" and status == 200 else None
        if found is not None and self.cache is not None:
            body = await asyncio.to_thread(self._recordable, bytes(raw))
            if body is not None:
                tool_input = _tool_input(found[1], dict(request.query))
                answer = {"error": "", "response": body}
                await self.cache.store(CACHE_CATEGORY, CACHE_TOOL, found[0].name, tool_input, answer)
        return web.Response(body=bytes(raw), status=status, headers={"Content-Type": content_type, SOURCE_HEADER: "live"})

    def _recordable(self, raw: bytes) -> Any:
        """The JSON answer to record, with no trace of the token (a record outlives the run); None if not JSON."""
        try:
            return json.loads(self._scrubber.scrub(raw.decode("utf-8")))
        except ValueError:
            return None

    def _match(self, path: str) -> tuple[ApiSpec, dict[str, Any]] | None:
        """The endpoint serving `path` and its typed path values, or None."""
        found = self._route_for(path.rstrip("/"))
        if found is None:
            return None
        values = _typed_path_values(found[0], found[1].groupdict())
        return None if values is None else (found[0], values)

    def _route_for(self, path: str) -> tuple[ApiSpec, re.Match[str]] | None:
        for api, regex in self._routes:
            match = regex.fullmatch(path)
            if match is not None:
                return api, match
        return None

    def _answer(self, api: ApiSpec, values: dict[str, Any], params: dict[str, str]) -> Any:
        seed = hashlib.sha256(json.dumps([api.name, values, sorted(params.items())]).encode()).digest()
        rng = random.Random(seed)
        example = api.extra.get("response_example")
        body = copy.deepcopy(example) if example is not None else sample_value(api.extra.get("response_schema"), rng)
        if not isinstance(body, dict):
            return body
        for name, value in values.items():
            if name in body:
                body[name] = value
        owner = _last_id_placeholder(api.url)
        if owner is not None and "id" in body:
            body["id"] = values[owner]
            known = self._names.get((owner.removesuffix("_id"), str(values[owner])))
            if known is not None:
                body.update({field: known for field in _NAME_FIELDS[:2] if field in body})
        if "page" in body and params.get("page", "").isdigit():
            body["page"] = int(params["page"])
        if "/search/" in api.url:
            self._fill_search(api, body, params["query"].strip(), rng)
        return body

    def _fill_search(self, api: ApiSpec, body: dict[str, Any], query: str, rng: random.Random) -> None:
        kind = api.url.rstrip("/").rsplit("/", 1)[-1]
        results = body.get("results")
        if isinstance(results, list) and results and isinstance(results[0], dict):
            item = copy.deepcopy(results[0])
        else:
            schema = api.extra.get("response_schema") or {}
            item = sample_value(((schema.get("properties") or {}).get("results") or {}).get("items"), rng) or {}
        item.update({field: query for field in _NAME_FIELDS if field in item})
        item["id"] = _stable_id(kind, query)
        self._names[(kind, str(item["id"]))] = query
        if len(self._names) > _MAX_REMEMBERED_NAMES:
            self._names.popitem(last=False)
        body.update({"page": 1, "results": [item], "total_results": 1, "total_pages": 1})


def _tool_input(values: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    """The cache key's input of a call: its path values, then its query parameters by name."""
    return {**values, **{name: params[name] for name in sorted(params) if name not in values}}


def _path_regex(url: str) -> re.Pattern[str]:
    pieces = _PLACEHOLDER.split(urlsplit(url).path.rstrip("/"))
    pattern = "".join(re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>[^/]+)" for i, piece in enumerate(pieces))
    return re.compile(pattern)


def _typed_path_values(api: ApiSpec, raw: Mapping[str, str]) -> dict[str, Any] | None:
    """Path values converted to their declared types; None when an integer slot holds no integer."""
    types = {p.name: p.type for p in api.parameters if p.location == "path"}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if types.get(name) == "integer":
            if not value.isdigit():
                return None
            values[name] = int(value)
        else:
            values[name] = value
    return values


def _last_id_placeholder(url: str) -> str | None:
    names = _PLACEHOLDER.findall(url)
    return names[-1] if names and names[-1].endswith("_id") else None


def _stable_id(kind: str, query: str) -> int:
    digest = hashlib.sha256(f"{kind}:{query.casefold()}".encode()).hexdigest()
    return 100_000 + int(digest[:8], 16) % 900_000
