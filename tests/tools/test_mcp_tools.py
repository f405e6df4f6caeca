"""MCP servers as tools: a real stdio server and a real streamable-HTTP server, called through a real gateway."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import codetool
from codetool import load_config
from codetool_kernel.errors import ConfigError, ToolGatewayError
from codetool_kernel.protocol import ToolRequest, ToolResponse
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import step, step_of, system_text
from tests.tools.test_function_tools import stub_overrides
from tools import GatewaySession, McpOptions, McpServerSpec, Query, ToolGateway, create_provider
from tools.stderr_tail import StderrTail

SERVER = Path(__file__).resolve().parents[1] / "support" / "mcp_server.py"
STDIO = shlex.join([sys.executable, str(SERVER)])
BASE = "http://tools.codetool/mcp"
QUERY = Query(query_id="q1", text="Will it be sunny in Paris?")
API_KEY = "mcp-key-3f9a2b7c1d"


async def call(session: GatewaySession, path: str, arguments: Any = None) -> ToolResponse:
    body = {} if arguments is None else arguments
    return await session(ToolRequest(method="POST", url=f"{BASE}/{path}", json_body=body))


def error_of(response: ToolResponse) -> str:
    return json.loads(response.body)["error"]


@pytest.fixture
async def http_server() -> AsyncIterator[str]:
    """The same server over streamable HTTP in its own process, demanding `X-Api-Key: API_KEY`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER), "--http", "--require-header", f"X-Api-Key={API_KEY}", stdout=asyncio.subprocess.PIPE
    )
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 60)  # type: ignore[union-attr]
        assert line.startswith(b"PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/mcp"
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def test_stdio_tools_are_called_through_the_gateway_with_audit_and_memo() -> None:
    async with create_provider("mcp", servers=[STDIO]) as provider, ToolGateway() as gateway:
        session = gateway.session(provider.toolset_for(QUERY), query_id="q1")
        forecast = await call(session, "mcp_server/get_forecast", {"city": "Paris", "days": 2})
        shout = await call(session, "mcp_server/shout", {"text": "hello"})
        again = await call(session, "mcp_server/shout", {"text": "hello"})
    assert forecast.status == 200
    assert json.loads(forecast.body) == {
        "city": "Paris",
        "days": [{"day": 1, "sky": "sunny", "high_c": 20}, {"day": 2, "sky": "sunny", "high_c": 21}],
    }
    assert shout.status == 200 and json.loads(shout.body) == {"result": "HELLO"} and again.body == shout.body
    assert [(c.api_name, c.memo_hit) for c in session.calls] == [
        ("get_forecast", False),
        ("shout", False),
        ("shout", True),
    ]


async def test_arguments_are_checked_against_the_input_schema_and_errors_reach_the_model() -> None:
    async with create_provider("mcp", servers=[STDIO]) as provider, ToolGateway() as gateway:
        session = gateway.session(provider.toolset_for(QUERY))
        wrong_type = await call(session, "mcp_server/shout", {"text": 3})
        missing = await call(session, "mcp_server/get_forecast", {"days": 2})
        unknown = await call(session, "mcp_server/launch_rockets")
        failed = await call(session, "mcp_server/fail", {"reason": "the sky fell"})
    assert wrong_type.status == 400 and error_of(wrong_type) == "shout: text: 3 is not of type 'string'"
    assert missing.status == 400 and "'city' is a required property" in error_of(missing)
    assert unknown.status == 404 and "unknown tool 'launch_rockets'" in error_of(unknown)
    assert failed.status == 500 and error_of(failed) == "fail reported an error: Error executing tool fail: the sky fell"
    assert [c.api_name for c in session.calls] == ["shout", "get_forecast", None, "fail"]


async def test_docs_come_from_the_listed_tools() -> None:
    async with create_provider("mcp", servers=[STDIO]) as provider:
        toolset = provider.toolset_for(QUERY)
    assert [api.name for api in toolset.apis] == ["get_forecast", "shout", "fail", "server_pid", "echo_headers"]
    assert toolset.routes[0].prefix == BASE
    docs = toolset.docs
    assert f"POST {BASE}/mcp_server/get_forecast" in docs
    assert "The weather forecast for a city, one entry per day." in docs
    assert "- city (string; required)" in docs and "- days (integer; optional, default 1)" in docs
    assert "Returns: {result: string}" in docs
    assert "JSON body parameters: none" in docs


async def test_closing_stops_the_stdio_server_and_reaps_it() -> None:
    async with create_provider("mcp", servers=[STDIO]) as provider, ToolGateway() as gateway:
        session = gateway.session(provider.toolset_for(QUERY))
        pid = json.loads((await call(session, "mcp_server/server_pid")).body)["result"]
        os.kill(pid, 0)  # alive while the provider is open
    with pytest.raises(ProcessLookupError):  # a zombie would still take signal 0
        os.kill(pid, 0)


async def test_start_and_close_may_run_in_different_tasks() -> None:
    provider = create_provider("mcp", servers=[STDIO])
    await asyncio.create_task(provider.start())
    assert provider.toolset_for(QUERY).apis
    await asyncio.create_task(provider.aclose())
    with pytest.raises(ToolGatewayError, match="mcp provider is not started"):
        provider.toolset_for(QUERY)


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("no-such-mcp-server-binary --stdio", "mcp server 'no-such-mcp-server-binary' did not start:"),
        (
            shlex.join([sys.executable, "-c", "import sys; sys.stderr.write('missing config file\\n'); sys.exit(3)"]),
            "its stderr ends: missing config file",
        ),
        (shlex.join([sys.executable, "-c", "import sys; sys.stdin.read()"]), "did not answer within 1s"),
    ],
)
async def test_a_server_that_does_not_start_or_answer_is_one_clear_error(server: str, message: str) -> None:
    provider = create_provider("mcp", servers=[server], startup_timeout_s=1)
    with pytest.raises(ToolGatewayError) as caught:
        async with provider:
            pass
    assert message in str(caught.value) and "\n" not in str(caught.value)


async def test_http_server_headers_stay_on_the_host_and_are_masked_in_answers(http_server: str) -> None:
    spec = {"url": http_server, "headers": {"X-Api-Key": API_KEY}, "name": "weather"}
    async with create_provider("mcp", servers=[spec]) as provider, ToolGateway() as gateway:
        toolset = provider.toolset_for(QUERY)
        session = gateway.session(toolset)
        shout = await call(session, "weather/shout", {"text": "over http"})
        echoed = await call(session, "weather/echo_headers")
    assert shout.status == 200 and json.loads(shout.body) == {"result": "OVER HTTP"}
    assert echoed.status == 200 and json.loads(echoed.body)["x-api-key"] == "MASKED_MCP_HEADER_0"
    assert API_KEY not in echoed.body
    assert API_KEY not in toolset.model_dump_json() + toolset.docs + toolset.usage_notes
    assert "Says who is signed in (token MASKED_MCP_HEADER_0)." in toolset.docs
    assert [c.api_name for c in session.calls] == ["shout", "echo_headers"]


async def test_an_http_server_that_refuses_the_client_is_one_clear_error(http_server: str) -> None:
    with pytest.raises(ToolGatewayError, match=r"mcp server '127.0.0.1-\d+' did not start") as caught:
        async with create_provider("mcp", servers=[http_server], startup_timeout_s=10):
            pass
    assert "\n" not in str(caught.value) and API_KEY not in str(caught.value)


async def test_tools_of_several_servers_share_one_tool_set(http_server: str) -> None:
    servers = [STDIO, {"url": http_server, "headers": {"X-Api-Key": API_KEY}, "name": "remote"}]
    async with create_provider("mcp", servers=servers) as provider, ToolGateway() as gateway:
        session = gateway.session(provider.toolset_for(QUERY))
        local = await call(session, "mcp_server/shout", {"text": "a"})
        remote = await call(session, "remote/shout", {"text": "b"})
    assert json.loads(local.body) == {"result": "A"} and json.loads(remote.body) == {"result": "B"}
    assert [c.api_name for c in session.calls] == ["mcp_server.shout", "remote.shout"]


def test_server_options_parse_command_lines_urls_and_dicts() -> None:
    options = McpOptions(
        servers=[
            "python my_server.py --verbose",
            "python -m weather.server",
            "https://example.org/mcp",
            {"command": "uvx", "args": ["mcp-server-fetch"], "env": {"A": "1"}},
        ]
    )
    assert options.servers[0] == McpServerSpec(command="python", args=("my_server.py", "--verbose"))
    assert options.servers[2] == McpServerSpec(url="https://example.org/mcp")
    provider = create_provider("mcp", servers=[*options.servers, "python my_server.py"])
    names = ["my_server", "weather.server", "example.org", "mcp-server-fetch", "my_server-2"]
    assert [name for name, _ in provider.servers] == names
    for bad, message in [
        ([], "at least 1 item"),
        ([{"command": "x", "url": "http://a/mcp"}], "exactly one of"),
        ([{"command": "x", "headers": {"A": "b"}}], "headers belong to a `url`"),
        (["'unclosed"], "cannot split the command"),
    ]:
        with pytest.raises(ConfigError, match=message):
            create_provider("mcp", servers=bad)


async def test_a_chatty_server_costs_only_a_bounded_stderr_tail() -> None:
    tail = StderrTail("chatty", max_lines=5)
    chatter = "import sys\nfor i in range(20000): print('line', i, file=sys.stderr)\nsys.stderr.write('x' * 100000)"
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", chatter, stderr=tail.pipe)
    await tail.start()
    assert await process.wait() == 0
    await tail.aclose()
    assert list(tail.lines)[-2:] == ["line 19999", "x" * 500] and len(tail.lines) == 5


def forecast_policy(body: dict[str, Any]) -> list[str]:
    """A model that asks the MCP forecast tool from sandboxed code, then answers with it."""
    number = step_of(body)
    if number == 1:
        code = (
            "import requests\n"
            f"forecast = requests.post({BASE + '/mcp_server/get_forecast'!r}, json={{'city': 'Paris'}}).json()\n"
            "print('forecast:', forecast)"
        )
        return [step(1, "Ask the forecast tool", code)] * body.get("n", 1)
    answer = "print(f\"Paris: {forecast['days'][0]['sky']}, high {forecast['days'][0]['high_c']} C.\")"
    return [step(number, "Answer", answer, finished=True)] * body.get("n", 1)


async def test_solve_calls_an_mcp_tool_from_restricted_sandbox_code() -> None:
    async with OpenAIStub(forecast_policy) as stub:
        config = load_config(overrides=stub_overrides(stub.base_url), environ={})
        trajectory = await asyncio.to_thread(
            codetool.solve, QUERY.text, tools="mcp", tool_options={"servers": [STDIO]}, config=config
        )
    assert trajectory.stop_reason == "finished", [node.error for node in trajectory.nodes]
    first = trajectory.nodes[0]
    assert "forecast: {'city': 'Paris', 'days': [{'day': 1, 'sky': 'sunny', 'high_c': 20}]}" in first.stdout
    assert [(c.api_name, c.status) for c in first.api_calls] == [("get_forecast", 200)]
    assert trajectory.final_answer is not None and trajectory.final_answer.startswith("Paris: sunny, high 20 C.")
    assert f"POST {BASE}/mcp_server/get_forecast" in system_text(stub.requests[0])
