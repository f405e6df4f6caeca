"""The StableToolBench provider on real query files, its embedded server and the gateway."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codetool_kernel.errors import ConfigError, DataError
from codetool_kernel.protocol import ToolRequest
from tests.tools.conftest import DATA, STB_G1, EchoUpstream, body_of
from tools import Query, ToolGateway, create_provider
from tools.stabletoolbench import DEFAULT_PROMPT_URL, TOOLBENCH_KEY_MASK, StableToolBenchProvider


def first_api_body(query: Query, tool_input: dict[str, object]) -> dict[str, object]:
    entry = query.api_list[0] if query.api_list else {}
    return {
        "category": entry["category_name"],
        "tool_name": entry["tool_name"],
        "api_name": entry["api_name"],
        "tool_input": tool_input,
        "strip": "",
        "toolbench_key": TOOLBENCH_KEY_MASK,
    }


async def test_docs_show_the_virtual_url_and_every_api_of_a_real_query() -> None:
    async with create_provider("stabletoolbench", toolbench_key="real-key-123") as provider:
        query = provider.load_queries(str(STB_G1))[0]
        toolset = provider.toolset_for(query)
    assert query.query_id == "588" and query.group == "G1_instruction"
    assert ("TheClique", "Transfermarkt search") in query.relevant_apis
    assert query.api_list is not None and len(toolset.apis) == len(query.api_list)
    for entry in query.api_list:
        assert f"{entry['tool_name']}/{entry['api_name']}" in toolset.docs
        assert json.dumps(entry["api_name"]) in toolset.docs
        for parameter in entry["required_parameters"] + entry["optional_parameters"]:
            assert json.dumps(parameter["name"]) in toolset.docs
    assert toolset.docs.count(f"URL: {DEFAULT_PROMPT_URL}\n") == len(query.api_list)
    assert "Method: POST" in toolset.docs and TOOLBENCH_KEY_MASK in toolset.docs
    assert "real-key-123" not in toolset.docs + toolset.usage_notes
    assert toolset.secrets == {TOOLBENCH_KEY_MASK: "real-key-123"}
    assert toolset.routes[0].prefix == DEFAULT_PROMPT_URL and toolset.routes[0].upstream.endswith("/virtual")


@pytest.mark.parametrize("how", ["json", "data"])
async def test_generated_code_reaches_the_embedded_server_through_the_gateway(how: str) -> None:
    async with create_provider("stabletoolbench") as provider, ToolGateway() as gateway:
        query = provider.load_queries(str(STB_G1), ids=["588"])[0]
        session = gateway.session(provider.toolset_for(query), query_id=query.query_id)
        body = first_api_body(query, {"id_conc": "40698227-lumineers-at-aware-super-theatre"})
        sent = {"json_body": body} if how == "json" else {"data": json.dumps(body)}
        response = await session(ToolRequest(method="POST", url=DEFAULT_PROMPT_URL, **sent))
    answer = body_of(response)
    assert response.status == 200 and answer["error"] == ""
    assert set(answer["response"]) == set(query.api_list[0]["template_response"])
    assert session.calls[0].api_name == "TheClique/Songkick concert"


async def test_the_real_toolbench_key_is_injected_and_scrubbed_on_an_external_server(echo: EchoUpstream) -> None:
    options = {"virtual_url": f"{echo.base_url}/virtual", "toolbench_key": "real-key-123"}
    async with create_provider("stabletoolbench", **options) as provider, ToolGateway() as gateway:
        query = provider.load_queries(str(STB_G1))[0]
        session = gateway.session(provider.toolset_for(query))
        response = await session(
            ToolRequest(method="POST", url=DEFAULT_PROMPT_URL, json_body=first_api_body(query, {}))
        )
    assert json.loads(echo.received[0]["body"])["toolbench_key"] == "real-key-123"
    assert echo.received[0]["path"] == "/virtual"
    assert "real-key-123" not in response.body and TOOLBENCH_KEY_MASK in response.body


async def test_free_form_queries_get_the_most_relevant_apis_of_the_loaded_pool() -> None:
    async with create_provider("stabletoolbench", top_k=5) as provider:
        with pytest.raises(ConfigError, match="no API pool"):
            provider.toolset_for(Query(query_id="adhoc", text="football transfers"))
        provider.load_queries(str(DATA / "stabletoolbench" / "filter_test_instruction"), group="G1_instruction")
        toolset = provider.toolset_for(
            Query(query_id="adhoc", text="Transfermarkt search for football players by name")
        )
    assert len(toolset.apis) == 5
    assert "TheClique/Transfermarkt search" in [api.name for api in toolset.apis]


async def test_a_tools_folder_is_the_retrieval_pool_and_bad_tool_files_are_skipped(tmp_path: Path) -> None:
    weather = {
        "tool_name": "Open Weather",
        "tool_description": "Weather forecasts for any city",
        "api_list": [
            {
                "name": "Current weather",
                "description": "Weather now in a city",
                "method": "GET",
                "required_parameters": [
                    {"name": "city", "type": "STRING", "description": "City name", "default": "Paris"}
                ],
                "optional_parameters": [],
            },
            {
                "name": "Air quality",
                "description": "Pollution index of a city",
                "method": "GET",
                "required_parameters": [],
                "optional_parameters": [],
            },
        ],
    }
    jokes = {"tool_name": "Jokes", "api_list": [{"name": "Random joke", "description": "A random joke"}]}
    (tmp_path / "Weather").mkdir()
    (tmp_path / "Entertainment").mkdir()
    (tmp_path / "Weather" / "open_weather.json").write_text(json.dumps(weather))
    (tmp_path / "Entertainment" / "jokes.json").write_text(json.dumps(jokes))
    (tmp_path / "Entertainment" / "broken.json").write_text("{ not json")
    async with (
        create_provider("stabletoolbench", tools_dir=str(tmp_path), top_k=2) as provider,
        ToolGateway() as gateway,
    ):
        toolset = provider.toolset_for(Query(query_id="adhoc", text="what is the weather in Berlin right now"))
        session = gateway.session(toolset)
        body = {
            "category": "Weather",
            "tool_name": "Open Weather",
            "api_name": "Current weather",
            "tool_input": {"city": "Berlin"},
            "strip": "",
            "toolbench_key": TOOLBENCH_KEY_MASK,
        }
        response = await session(ToolRequest(method="POST", url=DEFAULT_PROMPT_URL, json_body=body))
    assert toolset.apis[0].name == "Open Weather/Current weather"
    assert response.status == 200 and body_of(response)["error"] == ""


def test_query_files_load_by_folder_and_group_with_id_filters_and_clear_errors(tmp_path: Path) -> None:
    provider = StableToolBenchProvider()
    folder = DATA / "stabletoolbench" / "filter_test_instruction"
    assert len(provider.load_queries(str(folder), group="G2_instruction")) == 92
    picked = provider.load_queries(str(folder / "G1_tool.json"))
    assert len(picked) == 118
    some = [q.query_id for q in picked[:2]]
    assert [q.query_id for q in provider.load_queries(str(folder / "G1_tool.json"), ids=some)] == some
    with pytest.raises(DataError, match="no query with id nope"):
        provider.load_queries(str(folder / "G1_tool.json"), ids=["nope"])
    with pytest.raises(ConfigError, match="name the group"):
        provider.load_queries(str(folder))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"query": "hi"}]))
    with pytest.raises(DataError, match="entry 0 lacks query/query_id"):
        provider.load_queries(str(bad))
    with pytest.raises(DataError, match="no such file"):
        provider.load_queries(str(tmp_path / "missing.json"))


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="no_such_option"):
        create_provider("stabletoolbench", no_such_option=1)
    with pytest.raises(ConfigError, match="llm_base_url and llm_model"):
        create_provider("stabletoolbench", simulator="llm")
    with pytest.raises(ConfigError, match="unknown tool provider"):
        create_provider("nope")
