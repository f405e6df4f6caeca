"""MCP servers as tools: the `mcp` provider, a client of the official `mcp` SDK.

`create_provider("mcp", servers=["python my_server.py", "http://127.0.0.1:8931/mcp"])` opens one
MCP session per server for the provider's whole life (a stdio subprocess, or streamable HTTP),
lists each server's tools and offers them to sandboxed code as `POST {base_url}/{server}/{tool}`
through a `HostToolServer`: the gateway allow-lists, memoises, audits and scrubs those calls like
any API. Arguments are checked against the tool's `inputSchema` (jsonschema) before the call;
the answer is the result's `structuredContent`, else its text; a result flagged `isError` is
an error answer the model reads. HTTP headers (tokens) stay on the host, and the gateway masks
their values in whatever comes back.

The sessions live in one task that the provider owns, so that `start` and `aclose` may run in
different tasks (the SDK's transports are anyio task groups, which must close where they opened).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import jsonschema
import structlog
from jsonschema.exceptions import best_match
from pydantic import Field, field_validator, model_validator

from codetool_kernel.errors import ToolGatewayError
from codetool_kernel.text import truncate
from codetool_kernel.validation import FrozenModel
from tools.host_tools import (
    HOST_TOOLS_URL,
    HostTool,
    HostToolCatalog,
    ToolArgumentError,
    ToolReportedError,
    parameters_from_schema,
    schema_type,
    tool_path,
)
from tools.registry import parse_options, register_provider
from tools.stderr_tail import StderrTail
from tools.toolset import Query, ToolProvider, ToolSet

if TYPE_CHECKING:
    from mcp import ClientSession, types

log = structlog.get_logger(__name__)

_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_TOOL_PAGES = 50
_STDERR_TAIL_CHARS = 300
_MIN_SCRUBBED_HEADER_CHARS = 8
_CLOSE_TIMEOUT_S = 15.0


class McpServerSpec(FrozenModel):
    """One MCP server: a stdio `command` (with `args`, `env`, `cwd`) or a streamable-HTTP `url` (with `headers`)."""

    name: str | None = None
    """Its URL segment and label; default: the script or package name, or the URL's host."""
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = Field(default_factory=dict, repr=False)
    """Extra environment of the subprocess (the SDK passes only a safe base environment besides)."""
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = Field(default_factory=dict, repr=False)
    """Sent with every HTTP request; they stay on the host and are masked in answers."""

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of `command` (stdio) and `url` (streamable HTTP)")
        if self.url is not None:
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(f"url {self.url!r} is not an http(s) URL")
            if self.args or self.env or self.cwd:
                raise ValueError("args, env and cwd belong to a stdio `command`, not to a `url`")
        elif self.headers:
            raise ValueError("headers belong to a `url`, not to a stdio `command`")
        if self.command is not None and not self.command.strip():
            raise ValueError("command is empty")
        return self

    @classmethod
    def parse(cls, text: str) -> McpServerSpec:
        """`http(s)://...` is a streamable-HTTP URL; anything else a stdio command line (shell-split)."""
        text = text.strip()
        if text.startswith(("http://", "https://")):
            return cls(url=text)
        try:
            words = shlex.split(text)
        except ValueError as exc:
            raise ValueError(f"cannot split the command {text!r} ({exc})") from None
        if not words:
            raise ValueError("an empty server command")
        return cls(command=words[0], args=tuple(words[1:]))

    def default_name(self) -> str:
        if self.url is not None:
            parts = urlsplit(self.url)
            return f"{parts.hostname}-{parts.port}" if parts.port else str(parts.hostname)
        args = list(self.args)
        if "-m" in args[:-1]:  # python -m package.server
            return args[args.index("-m") + 1]
        words = [] if "-c" in args else [word for word in args if not word.startswith("-")]
        return PurePath(words[0] if words else self.command or "server").name.removesuffix(".py") or "server"


class McpOptions(FrozenModel):
    """Options of the `mcp` provider (`create_provider("mcp", servers=[...])`)."""

    servers: tuple[McpServerSpec, ...] = Field(min_length=1)
    """Command lines, URLs or `McpServerSpec` dicts."""
    base_url: str = HOST_TOOLS_URL + "/mcp"
    """The URL prefix shown to the model; tool `t` of server `s` is `POST {base_url}/s/t`."""
    startup_timeout_s: float = Field(30.0, gt=0)
    """Longest a server may take to answer the handshake and the tool listing."""
    timeout_s: float = Field(60.0, gt=0)
    """Longest one tool call may take."""
    max_result_chars: int = Field(200_000, gt=0)
    concurrency: int = Field(8, gt=0)
    """Tool calls running at once, over all servers."""
    top_k: int | None = Field(None, gt=0)
    """Offer only the `top_k` tools most relevant to each query (None: all)."""

    @field_validator("servers", mode="before")
    @classmethod
    def _parse_servers(cls, value: Any) -> Any:
        if isinstance(value, (str, Mapping)):
            value = [value]
        if isinstance(value, (list, tuple)):
            return [McpServerSpec.parse(item) if isinstance(item, str) else item for item in value]
        return value


class McpTool(HostTool):
    """One tool of a connected MCP server."""

    def __init__(self, session: ClientSession, tool: types.Tool, name: str, timeout_s: float) -> None:
        self.session = session
        self.tool_name = tool.name
        self.name = name
        self.description = tool.description or tool.title or ""
        self.parameters = parameters_from_schema(tool.input_schema)
        output = tool.output_schema
        self.returns = schema_type(output, output.get("$defs")) if output else "text (a JSON object or array in it is parsed)"
        self._timeout_s = timeout_s
        self._validator = _validator_for(tool.input_schema)

    def check(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if self._validator is not None:
            error = best_match(self._validator.iter_errors(arguments))
            if error is not None:
                where = ".".join(str(part) for part in error.absolute_path) or "arguments"
                raise ToolArgumentError(f"{where}: {truncate(error.message, 300)}")
        return arguments

    async def run(self, checked: dict[str, Any]) -> Any:
        result = await self.session.call_tool(self.tool_name, checked, read_timeout_seconds=self._timeout_s)
        text = "\n".join(_block_text(block) for block in result.content)
        if result.is_error:
            raise ToolReportedError(text or "the tool reported an error")
        if result.structured_content is not None:
            return result.structured_content
        return _parsed_if_json(text)


def _validator_for(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator | None:
    try:
        validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        validator_class.check_schema(schema)
    except jsonschema.SchemaError:
        return None  # the server's own schema is broken: let the server judge the arguments
    return validator_class(schema)


def _parsed_if_json(text: str) -> Any:
    """A text holding a JSON object or array (how many servers answer) as that value; other text as is."""
    if text.lstrip().startswith(("{", "[")):
        with contextlib.suppress(ValueError):
            return json.loads(text)
    return text


def _block_text(block: Any) -> str:
    if block.type == "text":
        return str(block.text)
    mime = getattr(block, "mime_type", None)
    return f"[{block.type} content{f' ({mime})' if mime else ''} left out]"


@register_provider("mcp")
class McpToolsProvider(ToolProvider):
    """Tool sets of the tools that MCP servers list."""

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(McpOptions, "mcp", options)
        self.servers = _named(self.options.servers)
        """(URL segment, spec) of every server, in the order given."""
        self._catalog = HostToolCatalog("mcp", self.options.base_url, self.options.top_k)
        self._catalog.secrets = {
            f"MASKED_MCP_HEADER_{index}": value
            for index, value in enumerate(
                v for _, spec in self.servers for v in spec.headers.values() if len(v) >= _MIN_SCRUBBED_HEADER_CHARS
            )
        }
        self._owner: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[dict[str, McpTool]] | None = None
        self._closing = asyncio.Event()

    async def start(self) -> None:
        if self._owner is not None:
            return
        self._closing = asyncio.Event()
        self._ready = asyncio.get_running_loop().create_future()
        self._owner = asyncio.create_task(self._hold_sessions(self._ready), name="mcp sessions")
        tools = await asyncio.shield(self._ready)
        await self._catalog.serve(
            tools,
            timeout_s=self.options.timeout_s,
            max_result_chars=self.options.max_result_chars,
            concurrency=self.options.concurrency,
        )

    async def aclose(self) -> None:
        await self._catalog.close()
        owner, self._owner = self._owner, None
        if owner is None:
            return
        self._closing.set()
        if self._ready is not None and not self._ready.done():
            owner.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(owner, _CLOSE_TIMEOUT_S)

    def toolset_for(self, query: Query) -> ToolSet:
        return self._catalog.toolset(query)

    def load_queries(self, path: str, ids: Sequence[str] | None = None) -> list[Query]:
        return self._catalog.load_queries(path, ids)

    async def _hold_sessions(self, ready: asyncio.Future[dict[str, McpTool]]) -> None:
        """Open every session, hand their tools to `start`, and keep them open until `aclose`."""
        try:
            async with AsyncExitStack() as stack:
                listed: list[tuple[str, ClientSession, types.Tool]] = []
                for segment, spec in self.servers:
                    session, tools = await self._connect(stack, segment, spec)
                    listed += [(segment, session, tool) for tool in tools]
                if not ready.done():
                    ready.set_result(self._tools(listed))
                await self._closing.wait()
        except BaseException as exc:  # the owner task must always settle `ready`
            if not ready.done():
                failed = _server_failure(exc)
                ready.set_exception(failed.error() if failed else ToolGatewayError(f"mcp provider: {_describe(exc)}"))
            elif not isinstance(exc, asyncio.CancelledError):
                log.warning("mcp sessions ended with an error", error=_describe(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise

    def _tools(self, listed: list[tuple[str, ClientSession, types.Tool]]) -> dict[str, McpTool]:
        counts = Counter(tool.name for _, _, tool in listed)
        return {
            tool_path(segment, tool.name): McpTool(
                session,
                tool,
                tool.name if counts[tool.name] == 1 else f"{segment}.{tool.name}",
                self.options.timeout_s,
            )
            for segment, session, tool in listed
        }

    async def _connect(
        self, stack: AsyncExitStack, segment: str, spec: McpServerSpec
    ) -> tuple[ClientSession, list[types.Tool]]:
        """An initialised session with `spec` (closed with `stack`) and the tools it lists."""
        # the SDK takes a second or more to import: only a provider that starts pays for it
        import httpx2
        from mcp import ClientSession, StdioServerParameters, stdio_client
        from mcp.client.streamable_http import streamable_http_client

        tail: StderrTail | None = None
        timeout_s = self.options.startup_timeout_s
        try:
            if spec.url is not None:
                # how the SDK takes headers: on the HTTP client it is given (its own timeouts: 30 s, 300 s to read)
                client = httpx2.AsyncClient(headers=dict(spec.headers), timeout=httpx2.Timeout(30.0, read=300.0))
                http = await stack.enter_async_context(client)
                read, write = await stack.enter_async_context(streamable_http_client(spec.url, http_client=http))
            else:
                tail = StderrTail(f"mcp server {segment}")
                stack.push_async_callback(tail.aclose)  # runs after the process is stopped: reads to its end
                parameters = StdioServerParameters(
                    command=spec.command or "", args=list(spec.args), env=dict(spec.env) or None, cwd=spec.cwd
                )
                read, write = await stack.enter_async_context(stdio_client(parameters, errlog=tail.pipe))
                await tail.start()
            session = await stack.enter_async_context(ClientSession(read, write))
            # only these waits are bounded here: a cancel scope must not span the transports' task groups
            with anyio.fail_after(timeout_s):
                await session.initialize()
                tools = await _list_tools(session)
        except TimeoutError:
            raise _ServerFailed(f"mcp server {segment!r} did not answer within {timeout_s:g}s", tail) from None
        except Exception as exc:  # the SDK and its transports raise many kinds: one line each
            raise _ServerFailed(f"mcp server {segment!r} did not start: {_describe(exc)}", tail) from None
        return session, tools


class _ServerFailed(Exception):
    """A server did not start; the message is completed once its process is gone and its stderr read."""

    def __init__(self, message: str, tail: StderrTail | None) -> None:
        super().__init__(message)
        self.message = message
        self.tail = tail

    def error(self) -> ToolGatewayError:
        last = self.tail.last_line() if self.tail is not None else ""
        suffix = f" (its stderr ends: {truncate(last, _STDERR_TAIL_CHARS)})" if last else ""
        return ToolGatewayError(self.message + suffix)


async def _list_tools(session: ClientSession) -> list[types.Tool]:
    from mcp import types
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_TOOL_PAGES):
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _named(specs: Sequence[McpServerSpec]) -> list[tuple[str, McpServerSpec]]:
    named: list[tuple[str, McpServerSpec]] = []
    taken: set[str] = set()
    for spec in specs:
        base = _SEGMENT_UNSAFE.sub("-", spec.name or spec.default_name()).strip("-.") or "server"
        segment, number = base, 2
        while segment in taken:
            segment, number = f"{base}-{number}", number + 1
        taken.add(segment)
        named.append((segment, spec))
    return named


def _server_failure(exc: BaseException | None, depth: int = 0) -> _ServerFailed | None:
    """The `_ServerFailed` behind `exc`: itself, inside an exception group, or what it was raised during."""
    if exc is None or depth > 8:
        return None
    if isinstance(exc, _ServerFailed):
        return exc
    inner = exc.exceptions if isinstance(exc, BaseExceptionGroup) else ()
    for candidate in (*inner, exc.__context__):
        found = _server_failure(candidate, depth + 1)
        if found is not None:
            return found
    return None


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split())
    return truncate(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, 400)
