"""The `openapi` provider against a real notes API on loopback that also serves its own spec."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from codetool_kernel.errors import ConfigError, DataError
from codetool_kernel.protocol import ToolRequest
from tests.tools.conftest import API_KEY, TOKEN
from tests.tools.notes_api import NotesApi
from tools import OpenApiOptions, OpenApiProvider, Query, ToolGateway, ToolSet, create_provider
from tools.openapi.security import env_name, read_credentials

SECRETS = {"apiKeyAuth": API_KEY, "bearerAuth": TOKEN}
ALL = ("listNotes", "createNote", "getNote", "shareNote", "GET_folders", "GET_whoami")


def query(text: str = "notes", api_list: tuple[str, ...] | None = None) -> Query:
    return Query(query_id="q", text=text, api_list=api_list)


async def toolset_of(spec: str, q: Query, **options: Any) -> ToolSet:
    async with create_provider("openapi", spec=spec, **{"secrets": SECRETS, **options}) as provider:
        return provider.toolset_for(q)


async def call(toolset: ToolSet, request: ToolRequest) -> Any:
    async with ToolGateway() as gateway:
        return await gateway.session(toolset)(request)


def everything_shown(toolset: ToolSet) -> str:
    """All of a tool set that reaches the prompt or the sandbox."""
    return json.dumps([toolset.docs, toolset.usage_notes, dict(toolset.preset), toolset.model_dump(mode="json")])


async def test_the_docs_show_every_endpoint_its_parameters_body_and_response(notes_api: NotesApi, tmp_path: Path) -> None:
    toolset = await toolset_of(str(notes_api.write_spec(tmp_path)), query(api_list=ALL))
    base = f"http://127.0.0.1:{notes_api.port}/v1"
    docs = toolset.docs
    assert [api.name for api in toolset.apis] == list(ALL)
    assert "API 1: listNotes\n  What it does: List notes. Every note, newest first, optionally only those with a tag." in docs
    assert f"  Method and URL: GET {base}/notes\n" in docs
    assert "    - tag (query, string, one of 'work', 'home', optional): Only notes with this tag." in docs
    assert "    - limit (query, integer, optional, default 10): " in docs
    assert "  Response shape: [{id: integer, title: string, tags: [string]}]" in docs
    # the body fields come from a relative-file $ref, the path parameter from a path-level component $ref
    assert f"  Method and URL: POST {base}/notes\n" in docs
    assert "    - title (body, string, required): A short title." in docs
    assert "    - tags (body, array of string, one of 'work', 'home', optional): " in docs
    assert f"  Method and URL: GET {base}/notes/{{noteId}}\n" in docs
    assert "    - noteId (path, integer, required): The note's id, from listNotes or createNote." in docs
    assert "    - X-Trace (header, string, optional): A trace id echoed in the logs." in docs
    # a form body's fields; no response shape from the error answer when a 2xx one exists
    assert "API 4: shareNote\n  What it does: Share a note by email\n" in docs
    assert "    - email (form, string (email), required): Whom to share with.\n  Response shape: any" in docs
    # a recursive schema is cut where it recurs
    assert "API 5: GET_folders\n  What it does: The folder tree" in docs
    assert "  Response shape: {name: string, children: [object]}" in docs
    assert [route.prefix for route in toolset.routes] == [base]
    assert toolset.preset == {
        "headers": {"X-API-Key": "MASKED_API_KEY_AUTH_SECRET", "Authorization": "Bearer MASKED_BEARER_AUTH_SECRET"}
    }
    assert "requests.post(url, headers=headers, json=body)" in toolset.usage_notes
    assert API_KEY not in everything_shown(toolset) and TOKEN not in everything_shown(toolset)


async def test_the_spec_read_over_http_gives_the_same_tool_set(notes_api: NotesApi, tmp_path: Path) -> None:
    from_file = await toolset_of(str(notes_api.write_spec(tmp_path)), query(api_list=ALL))
    over_http = await toolset_of(f"{notes_api.base_url}/spec/notes.yaml", query(api_list=ALL))
    assert over_http.docs == from_file.docs and over_http.routes == from_file.routes


async def test_retrieval_offers_the_top_k_endpoints(notes_api: NotesApi, tmp_path: Path) -> None:
    spec = str(notes_api.write_spec(tmp_path))
    toolset = await toolset_of(spec, query("create a new note titled groceries"), top_k=2)
    assert len(toolset.apis) == 2 and toolset.apis[0].name == "createNote"
    assert "API 3:" not in toolset.docs
    wide = await toolset_of(spec, query("create a new note titled groceries"))
    assert sorted(api.name for api in wide.apis) == sorted(ALL)
    with pytest.raises(DataError, match="unknown OpenAPI endpoint.*deleteNote"):
        await toolset_of(spec, query(api_list=("getNote", "deleteNote")))


async def test_secrets_are_attached_host_side_and_scrubbed_from_answers(notes_api: NotesApi) -> None:
    toolset = await toolset_of(f"{notes_api.base_url}/spec/notes.yaml", query(api_list=ALL))
    headers = dict(toolset.preset["headers"])
    base = f"http://127.0.0.1:{notes_api.port}/v1"

    listed = await call(toolset, ToolRequest(method="GET", url=f"{base}/notes", params={"tag": "work"}, headers=headers))
    assert listed.status == 200, listed.body
    assert [note["title"] for note in json.loads(listed.body)] == ["Plan the team offsite", "Quarterly report draft"]
    assert listed.call.api_name == "listNotes"
    seen = notes_api.received[-1]["headers"]
    assert seen["X-API-Key"] == API_KEY and seen["Authorization"] == f"Bearer {TOKEN}"

    made = await call(toolset, ToolRequest(method="POST", url=f"{base}/notes", json_body={"title": "Call mum"}, headers=headers))
    assert made.status == 201 and json.loads(made.body)["title"] == "Call mum" and made.call.api_name == "createNote"
    shared = await call(
        toolset, ToolRequest(method="POST", url=f"{base}/notes/4/share", data={"email": "a@b.c"}, headers=headers)
    )
    assert shared.status == 204 and shared.call.api_name == "shareNote" and notes_api.received[-1]["form"] == {"email": "a@b.c"}

    echoed = await call(toolset, ToolRequest(method="GET", url=f"{base}/whoami", headers=headers))
    assert notes_api.received[-1]["headers"]["X-API-Key"] == API_KEY  # the real key went upstream ...
    answer = echoed.body + json.dumps(dict(echoed.headers)) + echoed.call.model_dump_json()
    assert API_KEY not in answer and TOKEN not in answer  # ... and never came back
    assert json.loads(echoed.body)["x_api_key"] == "MASKED_API_KEY_AUTH_SECRET"

    # the mask anywhere but its slot travels as the mask
    await call(toolset, ToolRequest(method="GET", url=f"{base}/whoami", params={"k": headers["X-API-Key"]}))
    assert notes_api.received[-1]["query"] == {"k": "MASKED_API_KEY_AUTH_SECRET"}


async def test_a_query_key_rides_in_the_masked_auth_params(notes_api: NotesApi, tmp_path: Path) -> None:
    spec = notes_api.write_spec(tmp_path)
    text = spec.read_text().replace(
        "bearerAuth: {type: http, scheme: bearer}",
        "bearerAuth: {type: http, scheme: bearer}\n    queryKey: {type: apiKey, in: query, name: api_key}",
    )
    spec.write_text(text)
    toolset = await toolset_of(str(spec), query(api_list=("GET_whoami",)), secrets={**SECRETS, "queryKey": "qk-77e1c0a9b3d54f21"})
    assert toolset.preset["auth_params"] == {"api_key": "MASKED_QUERY_KEY_SECRET"}
    assert "params={**auth_params, ...}" in toolset.usage_notes
    base = f"http://127.0.0.1:{notes_api.port}/v1"
    params = {**toolset.preset["auth_params"], "verbose": "1"}
    echoed = await call(toolset, ToolRequest(method="GET", url=f"{base}/whoami", params=params))
    assert notes_api.received[-1]["query"] == {"api_key": "qk-77e1c0a9b3d54f21", "verbose": "1"}
    assert "qk-77e1c0a9b3d54f21" not in echoed.body and json.loads(echoed.body)["query"]["api_key"] == "MASKED_QUERY_KEY_SECRET"


async def test_secrets_default_from_the_environment(notes_api: NotesApi, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        env_name("apiKeyAuth") == "CODETOOL_SECRET_API_KEY_AUTH" and env_name("petstore-auth") == "CODETOOL_SECRET_PETSTORE_AUTH"
    )
    monkeypatch.setenv("CODETOOL_SECRET_API_KEY_AUTH", API_KEY)
    monkeypatch.setenv("CODETOOL_SECRET_BEARER_AUTH", TOKEN)
    toolset = await toolset_of(f"{notes_api.base_url}/spec/notes.yaml", query(api_list=("listNotes",)), secrets={})
    answer = await call(
        toolset,
        ToolRequest(method="GET", url=f"http://127.0.0.1:{notes_api.port}/v1/notes", headers=dict(toolset.preset["headers"])),
    )
    assert answer.status == 200


async def test_a_missing_secret_is_one_warning_and_calls_go_out_without_it(
    notes_api: NotesApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODETOOL_SECRET_BEARER_AUTH", raising=False)
    with capture_logs() as logs:
        toolset = await toolset_of(
            f"{notes_api.base_url}/spec/notes.yaml", query(api_list=("listNotes",)), secrets={"apiKeyAuth": API_KEY}
        )
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 1 and "CODETOOL_SECRET_BEARER_AUTH" in warnings[0]["problems"][0]
    assert toolset.preset == {"headers": {"X-API-Key": "MASKED_API_KEY_AUTH_SECRET"}}
    answer = await call(
        toolset,
        ToolRequest(method="GET", url=f"http://127.0.0.1:{notes_api.port}/v1/notes", headers=dict(toolset.preset["headers"])),
    )
    assert answer.status == 401 and "Authorization" not in notes_api.received[-1]["headers"]


async def test_calls_outside_the_servers_are_refused(notes_api: NotesApi) -> None:
    toolset = await toolset_of(f"{notes_api.base_url}/spec/notes.yaml", query(api_list=ALL))
    headers = dict(toolset.preset["headers"])
    for url in (
        f"http://127.0.0.1:{notes_api.port}/outside",
        f"http://127.0.0.1:{notes_api.port}/v1/../outside",
        f"http://localhost:{notes_api.port}/v1/notes",
        "https://example.com/v1/notes",
    ):
        answer = await call(toolset, ToolRequest(method="GET", url=url, headers=headers))
        assert answer.status == 0 and "is not allowed; allowed URL prefixes" in (answer.error or ""), url
    assert notes_api.received == []


async def test_relative_servers_resolve_against_the_spec_url_and_server_url_overrides(
    notes_api: NotesApi, tmp_path: Path
) -> None:
    spec_url = f"{notes_api.base_url}/spec/notes.yaml"
    relative = notes_api.spec_text("notes.yaml").replace('"http://127.0.0.1:{port}/v1"', "/v1").replace('url: "/v1"', "url: /v1")
    (tmp_path / "notes.yaml").write_text(relative)
    (tmp_path / "common.yaml").write_text(notes_api.spec_text("common.yaml"))
    with pytest.raises(DataError, match="notes.yaml: server URL '/v1' is relative to a local file; give the server_url option"):
        await toolset_of(str(tmp_path / "notes.yaml"), query(api_list=ALL))
    pinned = await toolset_of(str(tmp_path / "notes.yaml"), query(api_list=ALL), server_url=f"{notes_api.base_url}/v1/")
    assert [route.prefix for route in pinned.routes] == [f"{notes_api.base_url}/v1"]
    assert pinned.apis[0].url == f"{notes_api.base_url}/v1/notes"
    over_http = await toolset_of(spec_url, query(api_list=ALL), server_url="http://127.0.0.1:9/api")
    assert [route.prefix for route in over_http.routes] == ["http://127.0.0.1:9/api"]


def test_basic_auth_is_encoded_host_side_and_cookie_keys_are_refused() -> None:
    document = {
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "session": {"type": "apiKey", "in": "cookie", "name": "sid"},
                "oauth": {"type": "oauth2", "flows": {}},
            }
        }
    }
    credentials = read_credentials(document, {"basic": "ada:s3cret-pass", "session": "x", "oauth": "tok"}, {})
    encoded = base64.b64encode(b"ada:s3cret-pass").decode()
    assert credentials.headers == {"Authorization": "Basic MASKED_BASIC_SECRET"}
    assert credentials.secrets["MASKED_BASIC_SECRET"] == encoded and "ada:s3cret-pass" in credentials.secrets.values()
    assert [slot.render(encoded) for slot in credentials.slots] == [f"Basic {encoded}"]
    assert any("'session' (apiKey cookie) is not supported" in line for line in credentials.problems)
    assert any("'oauth' would set header 'Authorization' again" in line for line in credentials.problems)
    assert read_credentials(document, {"basic": encoded}, {}).secrets == {"MASKED_BASIC_SECRET": encoded}
    with pytest.raises(ConfigError, match="unknown security scheme.*typo"):
        read_credentials(document, {"typo": "x"}, {})


def test_options_are_checked_when_the_provider_is_made() -> None:
    assert set(OpenApiOptions.model_fields) == {"spec", "top_k", "secrets", "server_url", "name"}
    with pytest.raises(ConfigError, match="openapi provider"):
        create_provider("openapi", spec="x.yaml", top_k=0)
    with pytest.raises(ConfigError, match="openapi provider"):
        create_provider("openapi", spec="x.yaml", servers="nope")
    with pytest.raises(ConfigError, match="server_url 'ftp://host' is not an http"):
        create_provider("openapi", spec="x.yaml", server_url="ftp://host")
    assert isinstance(create_provider("openapi", spec="x.yaml"), OpenApiProvider)


BAD_SPECS = {
    "swagger.yaml": ("swagger: '2.0'\npaths: {}\n", "a Swagger 2.0 spec, not OpenAPI 3"),
    "old.json": ('{"openapi": "2.5", "paths": {"/a": {}}}', "not OpenAPI 3.0/3.1 (its `openapi` field is '2.5')"),
    "nopaths.yaml": ("openapi: 3.1.0\ninfo: {title: t, version: '1'}\n", "no paths"),
    "broken.yaml": ("openapi: 3.0.0\npaths:\n  /a: [unclosed\n", "bad YAML at line"),
    "broken.json": ('{"openapi": "3.0.0",', "bad JSON"),
    "list.yaml": ("- openapi\n", "not an OpenAPI document (the top level is a list"),
    "dangling.yaml": (
        "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      responses: {'200': {$ref: '#/components/responses/Gone'}}\n",
        "cannot resolve $ref '#/components/responses/Gone'",
    ),
    "missingfile.yaml": ("openapi: 3.0.0\npaths:\n  /a: {$ref: 'absent.yaml#/A'}\n", "$ref file://"),
    "variable.yaml": (
        "openapi: 3.0.0\nservers: [{url: 'https://{region}.example.com'}]\npaths:\n  /a: {get: {}}\n",
        "uses {region} without a default",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
async def test_a_bad_spec_is_one_line_naming_the_file(name: str, tmp_path: Path) -> None:
    text, expected = BAD_SPECS[name]
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError) as raised:
        await toolset_of(str(tmp_path / name), query())
    message = str(raised.value)
    assert message.startswith(str(tmp_path / name)) and expected in message and "\n" not in message, message


async def test_a_missing_or_unreachable_spec_is_one_line(notes_api: NotesApi, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere\.yaml: no such file$"):
        await toolset_of(str(tmp_path / "nowhere.yaml"), query())
    with pytest.raises(DataError, match=r"/spec/nowhere\.yaml: HTTP 404 Not Found$"):
        await toolset_of(f"{notes_api.base_url}/spec/nowhere.yaml", query())


async def test_a_spec_over_http_may_not_reference_local_files(notes_api: NotesApi, tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text("A: {type: string}\n")
    ref = (tmp_path / "secret.yaml").as_uri()
    notes_api.extra_specs["sneaky.yaml"] = f"openapi: 3.0.0\npaths:\n  /a: {{$ref: '{ref}#/A'}}\n"
    with pytest.raises(DataError, match="sneaky.yaml: a spec read over HTTP may not \\$ref the local file"):
        await toolset_of(f"{notes_api.base_url}/spec/sneaky.yaml", query())


async def test_a_large_spec_over_http_is_read_whole_and_retrieval_picks_from_it(notes_api: NotesApi) -> None:
    paths = "".join(
        f"  /things/t{n}:\n    get:\n      operationId: getThing{n}\n      summary: Thing number {n} {'padding ' * 40}\n"
        for n in range(400)
    )
    notes_api.extra_specs["large.yaml"] = f"openapi: 3.1.0\nservers: [{{url: /api}}]\npaths:\n{paths}"
    assert len(notes_api.extra_specs["large.yaml"]) > 150_000
    spec = f"{notes_api.base_url}/spec/large.yaml"
    async with create_provider("openapi", spec=spec, top_k=5) as provider:
        assert len(provider.apis) == 400 and provider.apis[-1].name == "getThing399"
        toolset = provider.toolset_for(query("fetch getThing399"))
    assert [api.name for api in toolset.apis][0] == "getThing399" and len(toolset.apis) == 5
    assert [route.prefix for route in toolset.routes] == [f"{notes_api.base_url}/api"]


async def test_a_provider_that_is_not_started_says_so() -> None:
    provider = create_provider("openapi", spec="x.yaml")
    with pytest.raises(Exception, match="not started"):
        provider.toolset_for(query())
