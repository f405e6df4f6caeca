"""The embedded StableToolBench virtual API server over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from tests.support.openai_stub import OpenAIStub
from tools import ApiSpec, LlmSimulator, VirtualApiServer, cache_file_parts
from tools.http_server import SOURCE_HEADER
from tools.simulators import MAX_LIST_ITEMS, TemplateSimulator, load_template
from tools.stabletoolbench import api_spec

TEMPLATE = {
    "Players": [{"link": "str", "name": "str", "age": "int", "_list_length": 3}],
    "total": "int",
    "ratio": "float",
    "active": "bool",
    "tags": ["list of str with length 2"],
    "nothing": "NoneType",
}
ENTRY = {
    "category_name": "Data",
    "tool_name": "TheClique",
    "api_name": "Transfermarkt search",
    "api_description": "Search by name",
    "required_parameters": [{"name": "name", "type": "STRING", "description": "", "default": "messi"}],
    "optional_parameters": [],
    "method": "GET",
    "template_response": TEMPLATE,
}


def the_api(**changes: Any) -> ApiSpec:
    return api_spec({**ENTRY, **changes}, "http://localhost:8080/virtual", where="test")


def call_body(tool_input: Any, **changes: Any) -> dict[str, Any]:
    return {
        "category": "Data",
        "tool_name": "TheClique",
        "api_name": "Transfermarkt search",
        "tool_input": tool_input,
        "strip": "",
        "toolbench_key": "MASKED",
        **changes,
    }


def write_cache(root: Path, entries: dict[str, Any] | str) -> Path:
    path = root.joinpath(*cache_file_parts("Data", "TheClique", "Transfermarkt search"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries), encoding="utf-8")
    return path


async def post(url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as client, client.post(url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


def test_cache_files_follow_the_official_layout() -> None:
    assert cache_file_parts("Data", "TheClique", "Transfermarkt search") == (
        "Data",
        "theclique_for_Data",
        "transfermarkt_search.json",
    )
    assert cache_file_parts("News, Media", "3D Tool!", "id") == (
        "News_Media",
        "get_3d_tool_for_News_Media",
        "is_id.json",
    )


async def test_a_cached_json_string_response_comes_back_parsed(tmp_path: Path) -> None:
    players = {"Players": [{"name": "Lionel Messi", "link": "/lionel-messi"}]}
    write_cache(tmp_path, {str({"name": "messi"}): {"error": "", "response": json.dumps(players)}})
    async with VirtualApiServer(cache_dir=tmp_path) as server:
        status, answer = await post(server.url, json=call_body({"name": "messi"}))
    assert status == 200
    assert answer == {"error": "", "response": players}


async def test_a_cached_python_literal_response_is_parsed_and_key_order_does_not_matter(tmp_path: Path) -> None:
    literal = "{'name': 'Messi', 'clubs': ['Barcelona', 'PSG'], 'retired': False, 'coach': None}"
    write_cache(
        tmp_path,
        {
            str({"b": 1, "a": 2}): {"error": "", "response": literal},
            str({"x": 1}): {"error": "", "response": "plain text"},
        },
    )
    async with VirtualApiServer(cache_dir=tmp_path) as server:
        _, literal_answer = await post(server.url, json=call_body({"a": 2, "b": 1}))
        _, text_answer = await post(server.url, json=call_body({"x": 1}))
    assert literal_answer["response"] == {
        "name": "Messi",
        "clubs": ["Barcelona", "PSG"],
        "retired": False,
        "coach": None,
    }
    assert text_answer["response"] == "plain text"


async def test_a_miss_is_simulated_in_the_template_shape_and_deterministically(tmp_path: Path) -> None:
    async with VirtualApiServer(cache_dir=tmp_path) as server:
        server.register_apis([the_api()])
        _, first = await post(server.url, json=call_body({"name": "ronaldo"}))
        _, again = await post(server.url, json=call_body({"name": "ronaldo"}))
        _, other = await post(server.url, json=call_body({"name": "neymar"}))
    assert first == again
    assert first != other
    response = first["response"]
    assert first["error"] == ""
    assert set(response) == {"Players", "total", "ratio", "active", "tags", "nothing"}
    assert len(response["Players"]) == 3
    assert all(
        set(player) == {"link", "name", "age"} and isinstance(player["age"], int) for player in response["Players"]
    )
    assert isinstance(response["total"], int) and isinstance(response["ratio"], float)
    assert isinstance(response["active"], bool) and response["nothing"] is None
    assert len(response["tags"]) == 2 and all(isinstance(tag, str) for tag in response["tags"])


async def test_a_corrupt_cache_file_is_a_miss_reported_once(tmp_path: Path) -> None:
    path = write_cache(tmp_path, '{"not": "closed"')
    async with VirtualApiServer(cache_dir=tmp_path) as server:
        server.register_apis([the_api()])
        with capture_logs() as logs:
            first = await post(server.url, json=call_body({"name": "messi"}))
            second = await post(server.url, json=call_body({"name": "messi"}))
    assert first[0] == second[0] == 200
    assert set(first[1]["response"]) == set(TEMPLATE)
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["path"] == str(path)


async def test_unknown_apis_get_a_readable_not_found(tmp_path: Path) -> None:
    async with VirtualApiServer(cache_dir=tmp_path) as server:
        server.register_apis([the_api()])
        status, unknown_api = await post(server.url, json=call_body({}, api_name="Transfermarkt teleport"))
        _, unknown_tool = await post(server.url, json=call_body({}, tool_name="NoSuchTool"))
    assert status == 404
    assert unknown_api["response"] == ""
    assert "not found" in unknown_api["error"] and "Transfermarkt search" in unknown_api["error"]
    assert "not found" in unknown_tool["error"] and "NoSuchTool" in unknown_tool["error"]


@pytest.mark.parametrize(
    "send",
    [
        lambda body: {"json": body},
        lambda body: {"data": json.dumps(body)},
        lambda body: {"data": {**body, "tool_input": json.dumps(body["tool_input"])}},
        lambda body: {"json": {**body, "tool_input": json.dumps(body["tool_input"])}},
    ],
    ids=["json", "data-json-string", "data-form", "tool-input-as-string"],
)
async def test_bodies_are_accepted_as_json_json_strings_and_forms(send: Any) -> None:
    async with VirtualApiServer() as server:
        server.register_apis([the_api()])
        status, answer = await post(server.url, **send(call_body({"name": "messi"})))
    assert status == 200
    assert answer["error"] == "" and set(answer["response"]) == set(TEMPLATE)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": "this is not json"}, "not a JSON object"),
        ({"json": {"tool_name": "TheClique"}}, "'category'"),
        ({"json": call_body([1, 2])}, "tool_input must be a JSON object"),
        ({"json": call_body({}, category="..")}, "refusing cache path"),
    ],
)
async def test_malformed_calls_get_a_clear_error(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    async with VirtualApiServer(cache_dir=tmp_path) as server:
        status, answer = await post(server.url, **kwargs)
    assert status == 400
    assert message in answer["error"] and answer["response"] == ""


async def test_record_mode_writes_simulated_answers_for_later_runs(tmp_path: Path) -> None:
    async with VirtualApiServer(cache_dir=tmp_path, record=True) as server:
        server.register_apis([the_api()])
        _, simulated = await post(server.url, json=call_body({"name": "kaka"}))
    async with VirtualApiServer(cache_dir=tmp_path) as replay:  # knows no API: only the cache can answer
        async with aiohttp.ClientSession() as http, http.post(replay.url, json=call_body({"name": "kaka"})) as response:
            status, replayed, source = response.status, await response.json(), response.headers[SOURCE_HEADER]
    assert status == 200 and replayed == simulated
    assert source == "simulated"  # recorded simulations replay as what they are


async def test_the_llm_simulator_answers_and_falls_back_on_garbage() -> None:
    replies = iter(['```json\n{"error": "", "response": {"Players": [{"name": "Kylian"}]}}\n```', "I am not JSON"])
    async with OpenAIStub(lambda request: [next(replies)]) as stub:
        simulator = LlmSimulator(base_url=stub.base_url, model="stub-model")
        async with VirtualApiServer(simulator=simulator) as server:
            server.register_apis([the_api()])
            _, from_llm = await post(server.url, json=call_body({"name": "mbappe"}))
            _, fallback = await post(server.url, json=call_body({"name": "mbappe"}))
        await simulator.aclose()
        briefing = json.loads(stub.requests[0]["messages"][1]["content"])
    assert from_llm == {"error": "", "response": {"Players": [{"name": "Kylian"}]}}
    assert fallback == await TemplateSimulator().simulate(the_api(), {"name": "mbappe"})
    assert briefing["input"] == {"name": "mbappe"} and briefing["api"]["name"] == "Transfermarkt search"


def test_templates_given_as_cut_off_json_strings_still_give_their_shape() -> None:
    cut = json.dumps({"a": {"b": "int", "c": [{"d": "str", "_list_length": 9}]}, "e": "str", "f": "bool"})[:-14]
    assert load_template(cut) == {"a": {"b": "int", "c": [{"d": "str", "_list_length": 9}]}, "e": "str"}
    response = TemplateSimulator().response_for(the_api(template_response=cut), {})
    assert len(response["a"]["c"]) == MAX_LIST_ITEMS
