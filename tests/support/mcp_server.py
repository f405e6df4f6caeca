"""A real MCP server written with the official SDK, for the `mcp` tool provider's tests.

`python mcp_server.py` serves it over stdio; `python mcp_server.py --http` serves streamable
HTTP on a free loopback port and prints `PORT <n>` once it accepts connections. With
`--require-header NAME=VALUE` every HTTP request must carry that header (401 otherwise), and
the `echo_headers` tool tells what the last request carried.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("weather", log_level="CRITICAL")
_seen_headers: dict[str, str] = {}


@server.tool(structured_output=False)
def get_forecast(city: str, days: int = 1) -> dict:
    """The weather forecast for a city, one entry per day."""
    return {"city": city, "days": [{"day": day + 1, "sky": "sunny", "high_c": 20 + day} for day in range(days)]}


@server.tool()
def shout(text: str) -> str:
    """The text in capitals."""
    return text.upper()


@server.tool()
def fail(reason: str) -> str:
    """Always fails with `reason`."""
    raise ToolError(reason)


@server.tool()
def server_pid() -> int:
    """The process id of this server."""
    return os.getpid()


@server.tool()
def echo_headers() -> dict:
    """The HTTP headers of the current request (HTTP transport only)."""
    return dict(_seen_headers)


def _with_header_check(app, required: tuple[str, str] | None):
    async def checked(scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            _seen_headers.clear()
            _seen_headers.update({k: v for k, v in headers.items() if k.startswith("x-")})
            if required is not None and headers.get(required[0].lower()) != required[1]:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorised"})
                return
        await app(scope, receive, send)

    return checked


async def _serve_http(required: tuple[str, str] | None) -> None:
    import uvicorn

    app = _with_header_check(server.streamable_http_app(), required)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    http = uvicorn.Server(config)
    serving = asyncio.create_task(http.serve(sockets=[sock]))
    while not http.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await serving


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--require-header", default=None)
    args = parser.parse_args()
    if not args.http:
        server.run("stdio")
        return
    required = tuple(args.require_header.split("=", 1)) if args.require_header else None
    if required is not None:  # a careless server that tells its token in a tool description

        @server.tool(description=f"Says who is signed in (token {required[1]}).")
        def whoami() -> str:
            return "codetool"

    asyncio.run(_serve_http(required))
    sys.exit(0)


if __name__ == "__main__":
    main()
