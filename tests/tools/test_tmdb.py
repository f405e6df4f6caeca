"""The TMDB provider, its docs and the virtual TMDB behind the gateway."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from codetool_kernel.errors import ConfigError, DataError
from codetool_kernel.protocol import ToolRequest
from tests.tools.conftest import TMDB_QUERIES, TMDB_SPEC, EchoUpstream, body_of
from tools import Query, TmdbProvider, ToolGateway, create_provider
from tools.tmdb import TMDB_TOKEN_MASK

BASE = "https://api.themoviedb.org/3"


def matches_schema(value: Any, schema: dict[str, Any]) -> bool:
    """Whether `value` fits `schema` in the ways the spec states: types and known fields."""
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        return any(matches_schema(value, alternative) for alternative in alternatives)
    if value is None:
        return True
    kind = schema.get("type")
    if kind == "array":
        return isinstance(value, list) and all(matches_schema(item, schema.get("items") or {}) for item in value)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return isinstance(value, dict) and all(
            matches_schema(value[k], properties[k]) for k in value if k in properties
        )
    expected = {"integer": int, "number": (int, float), "string": str, "boolean": bool}.get(kind or "")
    return expected is None or isinstance(value, expected)


async def test_docs_cover_the_twenty_apis_of_a_query() -> None:
    async with create_provider("tmdb", spec_path=str(TMDB_SPEC)) as provider:
        query = provider.load_queries(str(TMDB_QUERIES))[0]
        toolset = provider.toolset_for(query)
    assert query.query_id == "q0"
    assert query.gold_solution == ("GET_search_person", "GET_person_person_id_movie_credits")
    assert [api.name for api in toolset.apis] == list(query.api_list or ())
    assert len(toolset.apis) == 20
    for api in toolset.apis:
        assert f"API {toolset.apis.index(api) + 1}: {api.name}\n" in toolset.docs
        assert f"GET {api.url}" in toolset.docs
    assert "GET https://api.themoviedb.org/3/person/{person_id}/movie_credits" in toolset.docs
    assert "- query (query, string, required)" in toolset.docs
    assert "- person_id (path, integer, required)" in toolset.docs
    assert toolset.docs.count("Response shape: {") == 20
    assert "headers=headers" in toolset.usage_notes
    assert toolset.preset["headers"]["Authorization"] == f"Bearer {TMDB_TOKEN_MASK}"
    assert toolset.secrets[TMDB_TOKEN_MASK] not in toolset.docs + json.dumps(dict(toolset.preset))


async def test_virtual_tmdb_answers_a_search_then_the_found_persons_credits() -> None:
    async with create_provider("tmdb", spec_path=str(TMDB_SPEC)) as provider, ToolGateway() as gateway:
        assert isinstance(provider, TmdbProvider) and provider.uses_virtual
        query = provider.load_queries(str(TMDB_QUERIES), ids=["q0"])[0]
        toolset = provider.toolset_for(query)
        session = gateway.session(toolset, query_id=query.query_id)
        headers = toolset.preset["headers"]
        found = await session(
            ToolRequest(method="GET", url=f"{BASE}/search/person", params={"query": "Sofia Coppola"}, headers=headers)
        )
        person = body_of(found)["results"][0]
        credits = await session(
            ToolRequest(method="GET", url=f"{BASE}/person/{person['id']}/movie_credits", headers=headers)
        )
        details = await session(ToolRequest(method="GET", url=f"{BASE}/person/{person['id']}", headers=headers))
        again = await session(
            ToolRequest(method="GET", url=f"{BASE}/search/person", params={"query": "Sofia Coppola"}, headers=headers)
        )
    schemas = {api.name: api.extra["response_schema"] for api in provider.apis}
    assert found.status == credits.status == details.status == 200
    assert person["name"] == "Sofia Coppola" and isinstance(person["id"], int)
    assert matches_schema(body_of(found), schemas["GET_search_person"])
    assert set(body_of(found)) <= set(schemas["GET_search_person"]["properties"])
    credit_list = body_of(credits)
    assert credit_list["id"] == person["id"]
    assert isinstance(credit_list["crew"], list) and credit_list["crew"]
    assert matches_schema(credit_list, schemas["GET_person_person_id_movie_credits"])
    assert body_of(details)["name"] == "Sofia Coppola" and body_of(details)["id"] == person["id"]
    assert again.body == found.body
    assert [call.api_name for call in session.calls] == [
        "GET_search_person",
        "GET_person_person_id_movie_credits",
        None,  # GET_person_person_id is served but is not among q0's 20 APIs
        "GET_search_person",
    ]


async def test_virtual_tmdb_wants_the_bearer_and_answers_like_tmdb_on_bad_calls() -> None:
    async with create_provider("tmdb", spec_path=str(TMDB_SPEC)) as provider, ToolGateway() as gateway:
        toolset = provider.toolset_for(Query(query_id="x", text="popular people", api_list=("GET_person_popular",)))
        session = gateway.session(toolset)
        headers = toolset.preset["headers"]
        no_bearer = await session(ToolRequest(method="GET", url=f"{BASE}/person/popular"))
        # straight to the server, not through the gateway: the mask itself is no token
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"{provider.upstream_url}/person/popular", headers=headers) as direct,
        ):
            direct_status = direct.status
        not_a_number = await session(ToolRequest(method="GET", url=f"{BASE}/person/abc", headers=headers))
        unknown = await session(ToolRequest(method="GET", url=f"{BASE}/no/such/path", headers=headers))
        no_query = await session(ToolRequest(method="GET", url=f"{BASE}/search/movie", headers=headers))
        literal = await session(ToolRequest(method="GET", url=f"{BASE}/person/popular", headers=headers))
    assert no_bearer.status == 401 and body_of(no_bearer)["status_code"] == 7
    assert direct_status == 401
    assert not_a_number.status == 404 and unknown.status == 404
    assert no_query.status == 422
    assert literal.status == 200 and "results" in body_of(literal)


async def test_with_a_token_calls_go_to_the_real_base_url_with_the_token(echo: EchoUpstream) -> None:
    options = {"spec_path": str(TMDB_SPEC), "token": "real-tmdb-token", "base_url": f"{echo.base_url}/3"}
    async with create_provider("tmdb", **options) as provider, ToolGateway() as gateway:
        toolset = provider.toolset_for(Query(query_id="x", text="q", api_list=("GET_search_person",)))
        response = await gateway.session(toolset)(
            ToolRequest(
                method="GET",
                url=f"{echo.base_url}/3/search/person",
                params={"query": "x"},
                headers=toolset.preset["headers"],
            )
        )
    assert echo.received[0]["headers"]["Authorization"] == "Bearer real-tmdb-token"
    assert "real-tmdb-token" not in response.body + json.dumps(dict(response.headers))
    assert toolset.docs.count(f"GET {echo.base_url}/3/search/person") == 1


async def test_free_form_queries_retrieve_the_search_api_that_yields_the_needed_id() -> None:
    async with create_provider("tmdb", spec_path=str(TMDB_SPEC)) as provider:
        toolset = provider.toolset_for(Query(query_id="adhoc", text="movies directed by Sofia Coppola"))
    names = [api.name for api in toolset.apis]
    assert len(names) == 20 and "GET_search_person" in names
    assert names.index("GET_search_person") < names.index("GET_person_person_id_movie_credits")


def test_bad_input_is_reported_clearly(tmp_path: Any) -> None:
    provider = create_provider("tmdb", spec_path=str(TMDB_SPEC))
    with pytest.raises(DataError, match="unknown TMDB endpoint"):
        provider.toolset_for(Query(query_id="x", text="q", api_list=("GET_nothing",)))
    with pytest.raises(DataError, match="no query with id q999"):
        provider.load_queries(str(TMDB_QUERIES), ids=["q999"])
    with pytest.raises(ConfigError, match="spec"):
        create_provider("tmdb", spec="tmdb_spec.json")
    with pytest.raises(DataError, match="not gzipped JSON"):
        (tmp_path / "bad.json.gz").write_bytes(b"not gzip")
        create_provider("tmdb", spec_path=str(tmp_path / "bad.json.gz"))
    with pytest.raises(ConfigError, match="needs a token"):
        create_provider("tmdb", spec_path=str(TMDB_SPEC), virtual=False)
    broken = tmp_path / "spec.json"
    broken.write_text(json.dumps({"endpoints": []}))
    with pytest.raises(DataError, match="no `endpoints`"):
        create_provider("tmdb", spec_path=str(broken))
