"""The embedded StableToolBench virtual API server: `POST /virtual`.

It speaks the official server's protocol: a body `{category, tool_name, api_name, tool_input,
strip, toolbench_key}` (sent as JSON, as a JSON string, or as a form) is answered
`{"error": "...", "response": ...}` from the response cache when it holds the input, else
from a simulator that knows the API's definition (`register_apis`). The `X-CodeTool-Source`
header says which (`recorded` or `simulated`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import structlog
from aiohttp import web

from codetool_kernel.errors import DataError
from tools.http_server import SOURCE_HEADER, EmbeddedServer
from tools.response_cache import ResponseCache, adapt_answer, parse_literal, standardize
from tools.simulators import Simulator, TemplateSimulator
from tools.toolset import ApiSpec

log = structlog.get_logger(__name__)

VIRTUAL_PATH = "/virtual"
SIMULATED_MARK = "codetool_simulated"
"""Key that `record=True` adds to the answers it writes: they were simulated, and replay as such."""
_json_response = partial(web.json_response, dumps=partial(json.dumps, ensure_ascii=False, default=str))


class _BadRequest(ValueError):
    pass


class VirtualApiServer(EmbeddedServer):
    """`async with VirtualApiServer(cache_dir=...) as srv:` then POST to `srv.url`.

    `record=True` writes simulated answers into the cache so later runs replay them.
    """

    def __init__(
        self,
        *,
        cache_dir: str | Path | None = None,
        simulator: Simulator | None = None,
        record: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.simulator: Simulator = simulator or TemplateSimulator()
        self.record = record and self.cache is not None
        self._apis: dict[tuple[str, str], ApiSpec] = {}
        self._tools: dict[str, set[str]] = {}

    @property
    def url(self) -> str:
        """The full URL of the `/virtual` endpoint."""
        return self.base_url + VIRTUAL_PATH

    @property
    def api_count(self) -> int:
        return len(self._apis)

    def register_apis(self, apis: Iterable[ApiSpec]) -> None:
        """Make APIs known (their `extra` holds `category`, `tool_name`, `api_name`, `template_response`)."""
        for api in apis:
            tool, name = str(api.extra.get("tool_name", "")), str(api.extra.get("api_name", ""))
            if not tool or not name:
                raise DataError(f"API {api.name!r} lacks the StableToolBench tool_name/api_name in its extra")
            self._apis.setdefault((standardize(tool), standardize(name)), api)
            self._tools.setdefault(standardize(tool), set()).add(name)

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(VIRTUAL_PATH, self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            payload = _payload(await request.read(), request.content_type)
            category, tool_name, api_name = (
                _text_field(payload, name) for name in ("category", "tool_name", "api_name")
            )
            tool_input = _tool_input(payload.get("tool_input"))
        except _BadRequest as exc:
            return _json_response({"error": str(exc), "response": ""}, status=400)
        api = self._apis.get((standardize(tool_name), standardize(api_name)))
        if api is not None:  # the registered spelling finds the cache file even if the model's differs
            category = str(api.extra.get("category", category))
            tool_name, api_name = str(api.extra["tool_name"]), str(api.extra["api_name"])
        try:
            found = await self._answer(api, category, tool_name, api_name, tool_input)
        except DataError as exc:
            return _json_response({"error": str(exc), "response": ""}, status=400)
        if found is None:
            return _json_response({"error": self._not_found(tool_name, api_name), "response": ""}, status=404)
        answer, source = found
        return _json_response(answer, headers={SOURCE_HEADER: source})

    async def _answer(
        self, api: ApiSpec | None, category: str, tool_name: str, api_name: str, tool_input: dict[str, Any]
    ) -> tuple[dict[str, Any], str] | None:
        """The answer and where it came from (`recorded` or `simulated`); None for an unknown API."""
        if self.cache is not None:
            cached = await self.cache.lookup(category, tool_name, api_name, tool_input)
            if cached is not None:
                answer = adapt_answer(cached)
                return answer, "simulated" if answer.pop(SIMULATED_MARK, None) is True else "recorded"
        if api is None:
            return None
        examples = await self.cache.examples(category, tool_name, api_name) if self.cache is not None else []
        answer = await self.simulator.simulate(api, tool_input, examples)
        if self.record and self.cache is not None:  # marked, so a replay is not taken for real data
            await self.cache.store(category, tool_name, api_name, tool_input, {**answer, SIMULATED_MARK: True})
        return answer, "simulated"

    def _not_found(self, tool_name: str, api_name: str) -> str:
        known = sorted(self._tools.get(standardize(tool_name), ()))
        if known:
            return f"API {api_name!r} of tool {tool_name!r} not found; this tool offers: {', '.join(known)}"
        return f"tool {tool_name!r} not found (API {api_name!r}); check tool_name and api_name against the docs"


def _payload(raw: bytes, content_type: str) -> dict[str, Any]:
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        raise _BadRequest("empty request body; send the call as json=body or data=json.dumps(body)")
    if content_type != "application/x-www-form-urlencoded" or text.startswith("{"):
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            return payload
    form = parse_qs(text, keep_blank_values=True) if "=" in text else {}
    if form and content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
        return {key: values[0] for key, values in form.items()}
    raise _BadRequest("request body is not a JSON object; send the call as json=body or data=json.dumps(body)")


def _text_field(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _BadRequest(f"field {name!r} is missing or not a non-empty string")
    return value.strip()


def _tool_input(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = parse_literal(value)
        except ValueError:
            raise _BadRequest("tool_input is not a JSON object: pass the API parameters as a dict") from None
    if not isinstance(value, dict):
        raise _BadRequest(f"tool_input must be a JSON object of parameters, got {type(value).__name__}")
    return value
