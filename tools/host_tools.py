"""Host-side tools (Python functions, MCP servers) served over the same HTTP path as every API.

Each tool is a `HostTool`; a `HostToolServer` is an embedded loopback server that answers
`POST {path}/{tool_name}` with a JSON object of arguments: it validates them (400), refuses
unknown tools (404), runs the tool under a time bound (504) and answers its result as JSON
(500 with the error when the tool failed). Sandboxed code reaches it through the gateway like
any API, under a fake host (`http://tools.codetool/...`) that only the gateway's route knows,
so allow-listing, memo, audit and secret scrubbing apply unchanged.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote

import pydantic_core
from aiohttp import web

from codetool_kernel.errors import ConfigError, ToolGatewayError
from codetool_kernel.text import truncate
from tools.http_server import EmbeddedServer
from tools.queries import create_query_source
from tools.retrieval import ApiRetriever
from tools.schema_shapes import compact_shape
from tools.scrubbing import SecretScrubber
from tools.toolset import ApiParameter, ApiSpec, Query, Route, ToolSet

HOST_TOOLS_URL = "http://tools.codetool"
"""The fake host under which host-side tools are offered; only the gateway's routes resolve it."""
TOOL_KEY_HEADER = "X-CodeTool-Tool-Key"
"""The header by which the gateway's route proves a call to a `HostToolServer` (random key per server), so
that no other local process can run host-side tools through its loopback port."""
_MAX_BODY_BYTES = 1_000_000
_MAX_ERROR_CHARS = 600


class ToolArgumentError(ValueError):
    """The arguments do not fit the tool; the message is one line for the model."""


class ToolReportedError(RuntimeError):
    """The tool answered with an error of its own (e.g. an MCP result with `isError`)."""


class HostTool(ABC):
    """One tool run on the host: its documentation, argument check and call."""

    name: str
    description: str
    parameters: tuple[ApiParameter, ...]
    returns: str
    """The result's shape for the docs, e.g. `{city: string, high_c: number}`."""

    @abstractmethod
    def check(self, arguments: dict[str, Any]) -> Any:
        """The arguments ready for `run`; raises `ToolArgumentError` when they do not fit."""

    @abstractmethod
    async def run(self, checked: Any) -> Any:
        """Call the tool with checked arguments; its result (anything JSON-able, else `str()`-ed)."""


class HostToolServer(EmbeddedServer):
    """Serves `tools` (URL path -> tool) on loopback: `POST {path}` with a JSON object body."""

    def __init__(
        self,
        tools: Mapping[str, HostTool],
        *,
        timeout_s: float = 60.0,
        max_result_chars: int = 200_000,
        concurrency: int = 8,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.tools = {"/" + unquote(path).strip("/"): tool for path, tool in tools.items()}
        self.key = secrets.token_urlsafe(24)
        """What `TOOL_KEY_HEADER` must hold on every call (the gateway route injects it)."""
        self.timeout_s = timeout_s
        self.max_result_chars = max_result_chars
        self._slots = asyncio.Semaphore(concurrency)

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get(TOOL_KEY_HEADER, "").encode(), self.key.encode()):
            return _error(401, "calls to host-side tools must come through the tool gateway")
        tool = self.tools.get(request.path.rstrip("/"))
        if tool is None:
            known = ", ".join(sorted(t.name for t in self.tools.values()))
            return _error(404, f"unknown tool {request.path.rsplit('/', 1)[-1]!r}; the tools are: {known}")
        if request.method != "POST":
            return _error(405, f"call tool {tool.name!r} with POST and a JSON object body")
        try:
            arguments = await _arguments(request)
            checked = tool.check(arguments)
        except ToolArgumentError as exc:
            return _error(400, f"{tool.name}: {exc}")
        try:
            async with self._slots, asyncio.timeout(self.timeout_s):
                result = await tool.run(checked)
        except TimeoutError:
            return _error(504, f"{tool.name} did not answer within {self.timeout_s:g}s")
        except ToolReportedError as exc:
            return _error(500, f"{tool.name} reported an error: {exc}")
        except Exception as exc:  # the tool's own failure is the model's to see
            return _error(500, f"{tool.name} raised {type(exc).__name__}: {exc}")
        text = await asyncio.to_thread(_to_json, result)
        if len(text) > self.max_result_chars:
            return _error(
                500, f"{tool.name}'s result is too long ({len(text)} characters, at most {self.max_result_chars}); ask for less"
            )
        return web.Response(text=text, content_type="application/json")


async def _arguments(request: web.Request) -> dict[str, Any]:
    raw = await request.text()
    if not raw.strip():
        return {}
    try:
        arguments = json.loads(raw)
    except ValueError:
        raise ToolArgumentError("the body is not JSON; send the arguments as `json={...}`") from None
    if not isinstance(arguments, dict):
        raise ToolArgumentError(f"the body must be a JSON object of arguments, got {type(arguments).__name__}")
    return arguments


def _to_json(result: Any) -> str:
    return json.dumps(pydantic_core.to_jsonable_python(result, fallback=str), ensure_ascii=False, default=str)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": truncate(" ".join(message.split()), _MAX_ERROR_CHARS)}, status=status)


def refuse_duplicate_names(provider: str, names: Sequence[str]) -> None:
    """A one-line `ConfigError` when two tools share a name."""
    doubled = sorted({name for name in names if names.count(name) > 1})
    if doubled:
        raise ConfigError(f"{provider} provider: more than one tool is named {', '.join(map(repr, doubled))}")


def tool_path(*parts: str) -> str:
    """A URL path of quoted segments, e.g. `/mcp/weather/get_forecast`."""
    return "".join("/" + quote(part, safe="") for part in parts)


def parameters_from_schema(schema: Any, defaults: Mapping[str, Any] | None = None) -> tuple[ApiParameter, ...]:
    """The top-level properties of a JSON-schema object as documented body parameters."""
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        return ()
    required = set(schema.get("required") or ())
    parameters = []
    for name, prop in schema["properties"].items():
        prop = prop if isinstance(prop, Mapping) else {}
        default = (defaults or {}).get(name, prop.get("default"))
        parameters.append(
            ApiParameter(
                name=str(name),
                type=schema_type(prop, schema.get("$defs")),
                description=str(prop.get("description") or ""),
                required=name in required,
                default=default,
                location="body",
            )
        )
    return tuple(parameters)


def schema_type(schema: Any, defs: Any = None) -> str:
    """A short type name: `string`, `integer or null`, `array of string`, `{name: string}`."""
    if not isinstance(schema, Mapping):
        return "any"
    reference = schema.get("$ref")
    if isinstance(reference, str) and isinstance(defs, Mapping):
        return compact_shape(defs.get(reference.rsplit("/", 1)[-1]))
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(value) for value in schema["enum"][:12])
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return " or ".join(schema_type(option, defs) for option in alternatives)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(map(str, kind))
    if kind == "array":
        return f"array of {schema_type(schema.get('items'), defs)}" if "items" in schema else "array"
    if kind == "object" and schema.get("properties"):
        return compact_shape(schema)
    if kind == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return f"object of {schema_type(schema['additionalProperties'], defs)} values"
    return str(kind or "any")


def render_docs(apis: Sequence[ApiSpec]) -> str:
    """The docs block: per tool its name, what it does, how to call it, its parameters and result shape."""
    blocks = []
    for number, api in enumerate(apis, 1):
        lines = [
            f"Tool {number}: {api.name}",
            f"  What it does: {truncate(' '.join(api.description.split()), 600) or '(no description)'}",
            f"  Method and URL: {api.method} {api.url}",
        ]
        if api.parameters:
            lines.append("  JSON body parameters:")
            for p in api.parameters:
                default = f", default {p.default!r}" if p.default is not None else ""
                need = "required" if p.required else "optional"
                summary = truncate(" ".join(p.description.split()), 200)
                lines.append(f"    - {p.name} ({p.type}; {need}{default})" + (f": {summary}" if summary else ""))
        else:
            lines.append("  JSON body parameters: none (send `json={}`)")
        lines.append(f"  Returns: {api.extra.get('returns') or 'any'}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


USAGE_NOTES = (
    "Each tool is called with `requests.post(URL, json={...arguments...})` at the exact URL its docs show, "
    "and `.json()` of the answer is the tool's result. A failed call answers a non-2xx status and a JSON "
    "object `{\"error\": ...}` saying why (bad arguments, unknown tool, the tool's own error): read it "
    "before you retry. Pass arguments by name as the docs list them; no headers are needed."
)


def host_tool_spec(tool: HostTool, url: str) -> ApiSpec:
    """The `ApiSpec` that documents `tool` at `url` (the URL sandboxed code posts to)."""
    return ApiSpec(
        name=tool.name,
        method="POST",
        url=url,
        description=tool.description,
        parameters=tool.parameters,
        extra={"returns": tool.returns},
    )


class HostToolCatalog:
    """The tools of one provider under one URL prefix, their server and the tool sets built from them."""

    def __init__(self, name: str, prefix: str, top_k: int | None) -> None:
        if not prefix.startswith(("http://", "https://")):
            raise ConfigError(f"{name} provider: base_url {prefix!r} is not an http(s) URL")
        self.name = name
        self.prefix = prefix.rstrip("/")
        self.top_k = top_k
        self.apis: tuple[ApiSpec, ...] = ()
        self.upstream = ""
        self.secrets: dict[str, str] = {}
        """Mask -> real value of what must never reach prompts or the sandbox (e.g. MCP header tokens)."""
        self._key = ""
        self._retriever: ApiRetriever | None = None
        self._server: HostToolServer | None = None

    async def serve(self, tools: Mapping[str, HostTool], *, timeout_s: float, max_result_chars: int, concurrency: int) -> None:
        """Start a dispatch server for `tools` (URL path below the prefix -> tool) and offer them (idempotent)."""
        if self._server is not None:
            return
        server = HostToolServer(tools, timeout_s=timeout_s, max_result_chars=max_result_chars, concurrency=concurrency)
        await server.start()
        self._server = server
        self.publish(tools, server)

    async def close(self) -> None:
        """Withdraw the tools and stop their server."""
        self.withdraw()
        server, self._server = self._server, None
        if server is not None:
            await server.aclose()

    def load_queries(self, path: str, ids: Sequence[str] | None = None) -> list[Query]:
        """Queries of a plain query file (see `tools.queries.PlainQueries`), in this provider's group."""
        return [query.model_copy(update={"group": self.name}) for query in create_query_source("plain").load(path, ids)]

    def publish(self, tools: Mapping[str, HostTool], server: HostToolServer) -> None:
        """Offer `tools` (URL path below the prefix -> tool), served by the started `server`."""
        apis = [host_tool_spec(tool, self.prefix + path) for path, tool in tools.items()]
        scrubber = SecretScrubber(self.secrets)
        if scrubber:  # what a server says about its tools goes into prompts: no secret may ride along
            apis = [ApiSpec.model_validate_json(scrubber.scrub(api.model_dump_json())) for api in apis]
        self.apis = tuple(apis)
        self.upstream = server.base_url
        self._key = server.key
        self._retriever = None

    def withdraw(self) -> None:
        """The server stopped: no tool set until the next `publish`."""
        self.apis, self.upstream, self._key, self._retriever = (), "", "", None

    def toolset(self, query: Query) -> ToolSet:
        """The tool set for `query`: every tool, or the `top_k` most relevant ones."""
        if not self.upstream:
            raise ToolGatewayError(f"{self.name} provider is not started: use `async with create_provider(...)`")
        apis = self.apis
        if self.top_k is not None and len(apis) > self.top_k:
            if self._retriever is None:
                self._retriever = ApiRetriever(apis)
            apis = tuple(self._retriever.search(query.text, self.top_k))
        return ToolSet(
            name=self.name,
            apis=apis,
            routes=(Route(prefix=self.prefix, upstream=self.upstream, inject_headers={TOOL_KEY_HEADER: self._key}),),
            secrets=self.secrets,
            docs=render_docs(apis),
            usage_notes=USAGE_NOTES,
        )
