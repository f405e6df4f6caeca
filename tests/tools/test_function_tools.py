"""Python functions as tools: `@function_tool`, the `functions` provider, called through a real gateway."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from pydantic import BaseModel

import codetool
from codetool import load_config
from codetool_kernel.errors import ConfigError, ToolGatewayError
from codetool_kernel.protocol import ToolRequest, ToolResponse
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import step, step_of, system_text
from tools import FunctionToolsOptions, GatewaySession, Query, ToolGateway, create_provider, function_tool
from tools.host_tools import TOOL_KEY_HEADER

BASE = "http://tools.codetool/functions"
QUERY = Query(query_id="q1", text="What is the weather in Paris?")
weather_calls: list[tuple[str, int]] = []


def stub_overrides(base_url: str) -> dict[str, Any]:
    """Config overrides for a solve against the scripted OpenAI stand-in, in the restricted sandbox."""
    return {
        "llm": {"base_url": base_url, "api_key": "test", "model": "stub-model", "max_retries": 0},
        "search": {"n": 1},
        "sandbox": {"backend": "restricted", "limits": {"timeout_s": 20}},
    }


@function_tool
def get_weather(city: str, unit: Literal["C", "F"] = "C") -> dict[str, Any]:
    """Current weather in a city."""
    weather_calls.append((city, threading.get_ident()))
    return {"city": city, "temperature": 21 if unit == "C" else 70, "unit": unit}


class Sum(BaseModel):
    total: int
    terms: list[int]


@function_tool(name="add_up", description="Add integers.")
async def add(numbers: list[int], start: int = 0) -> Sum:
    return Sum(total=start + sum(numbers), terms=numbers)


def explode(reason: str) -> str:
    """Always raises."""
    raise ValueError(f"cannot do {reason}")


def opaque() -> object:
    """Returns something that JSON cannot hold."""
    return threading.Lock()


def huge(size: int) -> str:
    return "x" * size


never = asyncio.Event()


async def stuck() -> None:
    """Waits for ever."""
    await never.wait()


async def call(session: GatewaySession, name: str, arguments: Any = None, *, url: str | None = None) -> ToolResponse:
    body = {} if arguments is None else arguments
    return await session(ToolRequest(method="POST", url=url or f"{BASE}/{name}", json_body=body))


async def test_a_tool_call_goes_through_the_gateway_with_validated_arguments_and_an_audit() -> None:
    weather_calls.clear()
    async with create_provider("functions", functions=[get_weather, add]) as provider, ToolGateway() as gateway:
        session = gateway.session(provider.toolset_for(QUERY), query_id="q1")
        weather = await call(session, "get_weather", {"city": "Paris", "unit": "F"})
        summed = await call(session, "add_up", {"numbers": [1, "2", 3], "start": 10})
    assert weather.status == 200 and json.loads(weather.body) == {"city": "Paris", "temperature": 70, "unit": "F"}
    assert summed.status == 200 and json.loads(summed.body) == {"total": 16, "terms": [1, 2, 3]}
    assert [call.api_name for call in session.calls] == ["get_weather", "add_up"]
    assert session.calls[0].body == {"city": "Paris", "unit": "F"}
    # a sync function runs in a worker thread, never on the event loop's thread
    assert weather_calls[0][0] == "Paris" and weather_calls[0][1] != threading.get_ident()


async def test_repeated_calls_are_memoised_by_the_gateway() -> None:
    weather_calls.clear()
    async with create_provider("functions", functions=[get_weather]) as provider, ToolGateway() as gateway:
        session = gateway.session(provider.toolset_for(QUERY))
        first = await call(session, "get_weather", {"city": "Oslo"})
        again = await call(session, "get_weather", {"city": "Oslo"})
    assert first.body == again.body
    assert [c.memo_hit for c in session.calls] == [False, True]
    assert [city for city, _ in weather_calls] == ["Oslo"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "city: Field required"),
        ({"city": "Paris", "unit": "K"}, "unit: Input should be 'C' or 'F'"),
        ({"city": "Paris", "country": "FR"}, "country: Extra inputs are not permitted"),
        (["Paris"], "must be a JSON object"),
    ],
)
async def test_bad_arguments_are_a_400_with_one_line_and_the_function_never_runs(arguments: Any, expected: str) -> None:
    weather_calls.clear()
    async with create_provider("functions", functions=[get_weather]) as provider, ToolGateway() as gateway:
        session = gateway.session(provider.toolset_for(QUERY))
        response = await call(session, "get_weather", arguments)
    assert response.status == 400
    error = json.loads(response.body)["error"]
    assert expected in error and "\n" not in error
    assert weather_calls == []
    assert session.calls[0].api_name == "get_weather" and not session.calls[0].memo_hit


async def test_unknown_tools_and_urls_outside_the_prefix_are_refused() -> None:
    async with create_provider("functions", functions=[get_weather]) as provider, ToolGateway() as gateway:
        session = gateway.session(provider.toolset_for(QUERY))
        unknown = await call(session, "delete_everything")
        outside = await call(session, "get_weather", {"city": "Paris"}, url="http://tools.codetool/other/get_weather")
        climbing = await call(session, "x", url=f"{BASE}/../mcp/x")
    assert unknown.status == 404 and "unknown tool 'delete_everything'" in json.loads(unknown.body)["error"]
    assert "get_weather" in json.loads(unknown.body)["error"]
    assert unknown.call is not None and unknown.call.api_name is None
    assert outside.status == 0 and outside.error is not None and "not allowed" in outside.error
    assert climbing.status == 0


async def test_failures_timeouts_and_odd_results_come_back_as_answers() -> None:
    options = {"functions": [explode, opaque, huge, stuck], "timeout_s": 0.5, "max_result_chars": 1000}
    async with create_provider("functions", **options) as provider, ToolGateway() as gateway:
        session = gateway.session(provider.toolset_for(QUERY))
        raised = await call(session, "explode", {"reason": "that"})
        odd = await call(session, "opaque")
        small = await call(session, "huge", {"size": 10})
        big = await call(session, "huge", {"size": 5000})
        late = await call(session, "stuck")
    assert raised.status == 500
    assert json.loads(raised.body) == {"error": "explode raised ValueError: cannot do that"}
    assert odd.status == 200 and "lock" in json.loads(odd.body)
    assert small.status == 200 and json.loads(small.body) == "x" * 10
    assert big.status == 500 and "too long" in json.loads(big.body)["error"]
    assert late.status == 504 and "0.5s" in json.loads(late.body)["error"]
    assert not any(c.memo_hit for c in session.calls)


async def test_docs_show_each_tool_like_an_api() -> None:
    async with create_provider("functions", functions=[get_weather, add]) as provider:
        toolset = provider.toolset_for(QUERY)
    assert toolset.name == "functions"
    assert [api.url for api in toolset.apis] == [f"{BASE}/get_weather", f"{BASE}/add_up"]
    docs = toolset.docs
    assert "Tool 1: get_weather" in docs and "Current weather in a city." in docs
    assert f"POST {BASE}/get_weather" in docs
    assert "- city (string; required)" in docs
    assert "- unit (one of \"C\", \"F\"; optional, default 'C')" in docs
    assert "Tool 2: add_up" in docs and "Add integers." in docs
    assert "- numbers (array of integer; required)" in docs
    assert "Returns: {total: integer, terms: [integer]}" in docs
    assert "requests.post" in toolset.usage_notes
    assert toolset.routes[0].prefix == BASE and toolset.preset == {}


def test_the_decorator_leaves_the_function_callable() -> None:
    assert get_weather("Rome") == {"city": "Rome", "temperature": 21, "unit": "C"}
    assert asyncio.run(add([1, 2])) == Sum(total=3, terms=[1, 2])


def test_plain_and_marked_functions_mix_and_options_are_a_frozen_model() -> None:
    options = FunctionToolsOptions(functions=[get_weather, explode])
    assert options.functions == (get_weather, explode)
    provider = create_provider("functions", functions=[get_weather, explode])
    assert [tool.name for tool in provider.tools] == ["get_weather", "explode"]
    assert provider.tools[1].description == "Always raises."


@pytest.fixture
def tool_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    package = tmp_path / "weatherpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tools.py").write_text(
        "from tools import function_tool\n\n"
        "@function_tool\n"
        "def forecast(city: str) -> str:\n"
        "    '''Tomorrow's sky.'''\n"
        "    return f'sunny in {city}'\n\n"
        "def helper(x: int) -> int:\n"
        "    return x\n\n"
        "TOOLS = [forecast, helper]\n"
    )
    (package / "empty.py").write_text("def nothing() -> None:\n    pass\n")
    (package / "broken.py").write_text("raise RuntimeError('half written')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "weatherpkg"
    for name in [m for m in sys.modules if m.startswith("weatherpkg")]:
        del sys.modules[name]


async def test_tools_come_from_a_module_or_a_module_attribute(tool_package: str) -> None:
    marked = create_provider("functions", module=f"{tool_package}.tools")
    listed = create_provider("functions", module=f"{tool_package}.tools:TOOLS")
    assert [tool.name for tool in marked.tools] == ["forecast"]
    assert [tool.name for tool in listed.tools] == ["forecast", "helper"]
    async with marked, ToolGateway() as gateway:
        session = gateway.session(marked.toolset_for(QUERY))
        response = await call(session, "forecast", {"city": "Lyon"})
    assert json.loads(response.body) == "sunny in Lyon"


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("no_such_package.tools", "cannot import 'no_such_package.tools' (ModuleNotFoundError"),
        ("weatherpkg.broken", "cannot import 'weatherpkg.broken' (RuntimeError: half written)"),
        ("weatherpkg.empty", "'weatherpkg.empty' holds no tools"),
        ("weatherpkg.tools:MISSING", "has no attribute 'MISSING'"),
    ],
)
def test_a_bad_tool_module_is_one_config_error(tool_package: str, module: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_provider("functions", module=module)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_bad_options_are_one_config_error() -> None:
    with pytest.raises(ConfigError, match="no tools"):
        create_provider("functions")
    with pytest.raises(ConfigError, match="functions provider: functions.0"):
        create_provider("functions", functions=["not callable"])
    with pytest.raises(ConfigError, match="more than one tool is named 'get_weather'"):

        def other() -> None:
            pass

        create_provider("functions", functions=[get_weather, function_tool(name="get_weather")(other)])

    def star(*values: int) -> int:
        return sum(values)

    with pytest.raises(ConfigError, match=r"\*values cannot be passed by name"):
        create_provider("functions", functions=[star])


async def test_the_toolset_needs_a_started_provider() -> None:
    provider = create_provider("functions", functions=[get_weather])
    with pytest.raises(ToolGatewayError, match="not started"):
        provider.toolset_for(QUERY)


def weather_policy(body: dict[str, Any]) -> list[str]:
    """A model that asks the weather tool from sandboxed code, then answers with what it said."""
    number = step_of(body)
    if number == 1:
        code = (
            "import requests\n"
            f"weather = requests.post({BASE + '/get_weather'!r}, json={{'city': 'Paris'}}).json()\n"
            "print('weather:', weather)"
        )
        return [step(1, "Ask the weather tool", code)] * body.get("n", 1)
    answer = "print(f\"It is {weather['temperature']} degrees {weather['unit']} in Paris.\")"
    return [step(number, "Answer", answer, finished=True)] * body.get("n", 1)


async def test_solve_calls_a_python_function_from_restricted_sandbox_code() -> None:
    weather_calls.clear()
    async with OpenAIStub(weather_policy) as stub:
        config = load_config(overrides=stub_overrides(stub.base_url), environ={})
        trajectory = await asyncio.to_thread(
            codetool.solve, QUERY.text, tools="functions", tool_options={"functions": [get_weather]}, config=config
        )
    assert trajectory.stop_reason == "finished", [node.error for node in trajectory.nodes]
    first = trajectory.nodes[0]
    assert "weather: {'city': 'Paris', 'temperature': 21, 'unit': 'C'}" in first.stdout
    assert [(c.api_name, c.status) for c in first.api_calls] == [("get_weather", 200)]
    assert trajectory.final_answer is not None and trajectory.final_answer.startswith("It is 21 degrees C in Paris.")
    assert f"POST {BASE}/get_weather" in system_text(stub.requests[0])
    assert [city for city, _ in weather_calls] == ["Paris"]


async def test_the_loopback_server_answers_only_calls_that_come_through_the_gateway() -> None:
    weather_calls.clear()
    async with create_provider("functions", functions=[get_weather]) as provider:
        upstream = provider.toolset_for(QUERY).routes[0].upstream
        async with aiohttp.ClientSession() as http:
            bare = await http.post(f"{upstream}/get_weather", json={"city": "Paris"})
            forged = await http.post(
                f"{upstream}/get_weather", json={"city": "Paris"}, headers={TOOL_KEY_HEADER: "guessed"}
            )
            refusals = [(bare.status, await bare.json()), (forged.status, await forged.json())]
        async with ToolGateway() as gateway:
            session = gateway.session(provider.toolset_for(QUERY))
            through = await session(
                ToolRequest(
                    method="POST", url=f"{BASE}/get_weather", json_body={"city": "Rome"}, headers={TOOL_KEY_HEADER: "x"}
                )
            )
    assert [status for status, _ in refusals] == [401, 401]
    assert "through the tool gateway" in refusals[0][1]["error"]
    assert through.status == 200 and [city for city, _ in weather_calls] == ["Rome"]
