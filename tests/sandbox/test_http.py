"""HTTP calls from sandboxed code: the `requests` shim, the channel and the host's tool handler."""

from __future__ import annotations

from sandbox import ApiCall, Cell, Sandbox, ToolRequest, ToolResponse

from .conftest import MakeSandbox
from .tool_handlers import RecordingHandler, json_response

API = "https://api.example.test"


async def test_get_round_trip_with_params_and_headers(sandbox: Sandbox) -> None:
    answer = json_response({"results": [{"id": 7, "title": "Alien"}]})
    handler = RecordingHandler({f"{API}/search": answer})
    code = (
        "import requests\n"
        f"r = requests.get('{API}/search', params={{'query': 'alien', 'page': 1, 'skip': None}},\n"
        "                 headers=headers, timeout=5)\n"
        "print(r.status_code, r.ok, r.headers['content-type'])\n"
        "print(r.json()['results'][0]['title'])\n"
        "print(len(r.content), r.url)\n"
    )
    result = await sandbox.execute(Cell(code=code, preset={"headers": {"Authorization": "Bearer <MASK>"}}), handler)
    assert result.ok, result.error
    assert result.stdout.splitlines() == [
        "200 True application/json",
        "Alien",
        f"{len(answer.body.encode())} {API}/search?query=alien&page=1",
    ]
    [request] = handler.requests
    assert request.method == "GET"
    assert request.url == f"{API}/search"
    assert request.params == {"query": "alien", "page": 1}
    assert request.headers == {"Authorization": "Bearer <MASK>"}
    assert request.timeout_s == 5
    [call] = result.api_calls
    assert (call.method, call.url, call.status) == ("GET", f"{API}/search", 200)


async def test_bodies_and_methods_reach_the_handler(sandbox: Sandbox) -> None:
    handler = RecordingHandler()
    code = (
        "import requests\n"
        f"requests.post('{API}/virtual', json={{'tool': 'x', 'args': [1, 2]}})\n"
        f"requests.post('{API}/form', data={{'a': 1, 'b': 'two'}})\n"
        f"requests.put('{API}/raw', data='plain text')\n"
        f"requests.patch('{API}/p', json={{'x': None}})\n"
        f"requests.delete('{API}/d')\n"
        "with requests.Session() as s:\n"
        "    s.headers['X-Session'] = 'on'\n"
        f"    s.get('{API}/s', params=[('tag', 'a'), ('tag', 'b')])\n"
    )
    result = await sandbox.execute(Cell(code=code), handler)
    assert result.ok, result.error
    got = [(r.method, r.url.removeprefix(API), r.json_body, r.data) for r in handler.requests]
    assert got == [
        ("POST", "/virtual", {"tool": "x", "args": [1, 2]}, None),
        ("POST", "/form", None, {"a": 1, "b": "two"}),
        ("PUT", "/raw", None, "plain text"),
        ("PATCH", "/p", {"x": None}, None),
        ("DELETE", "/d", None, None),
        ("GET", "/s", None, None),
    ]
    assert handler.requests[-1].params == {"tag": ["a", "b"]}
    assert handler.requests[-1].headers == {"X-Session": "on"}
    assert [call.method for call in result.api_calls] == ["POST", "POST", "PUT", "PATCH", "DELETE", "GET"]


async def test_status_codes_and_raise_for_status(sandbox: Sandbox) -> None:
    handler = RecordingHandler(
        {
            f"{API}/missing": json_response({"error": "not found"}, status=404),
            f"{API}/broken": ToolResponse(status=503, body="down"),
        }
    )
    code = (
        "import requests\n"
        "for path in ('missing', 'broken'):\n"
        f"    r = requests.get('{API}/' + path)\n"
        "    try:\n"
        "        r.raise_for_status()\n"
        "    except requests.exceptions.HTTPError as exc:\n"
        "        print(r.status_code, r.ok, exc)\n"
        f"requests.get('{API}/missing').raise_for_status()\n"
    )
    result = await sandbox.execute(Cell(code=code), handler)
    assert result.stdout.splitlines() == [
        f"404 False 404 Client Error: Not Found for url: {API}/missing",
        f"503 False 503 Server Error: Service Unavailable for url: {API}/broken",
    ]
    assert not result.ok
    assert result.error_type == "HTTPError"
    assert [call.status for call in result.api_calls] == [404, 503, 404]


async def test_json_on_a_body_that_is_not_json_raises_a_clear_error(sandbox: Sandbox) -> None:
    handler = RecordingHandler(default=ToolResponse(status=200, body="<html>rate limited</html>"))
    code = f"import requests\nr = requests.get('{API}/x')\nprint(r.text)\ndata = r.json()\n"
    result = await sandbox.execute(Cell(code=code), handler)
    assert result.stdout == "<html>rate limited</html>\n"
    assert result.error_type == "JSONDecodeError"
    assert "not valid JSON" in result.error and "<html>" in result.error


async def test_calls_are_refused_without_a_tool_handler(sandbox: Sandbox) -> None:
    code = (
        "import requests\n"
        "try:\n"
        f"    requests.get('{API}/anything')\n"
        "except requests.exceptions.ConnectionError as exc:\n"
        "    print('refused:', exc)\n"
    )
    result = await sandbox.execute(Cell(code=code), None)
    assert result.ok, result.error
    assert result.stdout.startswith(f"refused: GET {API}/anything: HTTP calls are refused")
    [call] = result.api_calls
    assert call.url == f"{API}/anything" and call.status is None and "refused" in call.error


async def test_a_gateway_refusal_raises_connection_error_with_its_message(sandbox: Sandbox) -> None:
    refusal = ToolResponse(status=0, error="URL 'https://evil.test/' is not allowed", call=ApiCall(method="GET", url="https://evil.test/", error="not allowed", api_name="none"))
    handler = RecordingHandler(default=refusal)
    result = await sandbox.execute(Cell(code="import requests\nrequests.get('https://evil.test/')\n"), handler)
    assert not result.ok
    assert result.error == "ConnectionError: URL 'https://evil.test/' is not allowed"
    assert result.api_calls == [refusal.call]


async def test_a_failing_handler_becomes_a_connection_error(sandbox: Sandbox) -> None:
    async def broken(request: ToolRequest) -> ToolResponse:
        raise RuntimeError("gateway exploded")

    result = await sandbox.execute(Cell(code=f"import requests\nrequests.get('{API}/x')\n"), broken)
    assert result.error_type == "ConnectionError"
    assert "gateway exploded" in result.error
    assert result.api_calls[0].error and "gateway exploded" in result.api_calls[0].error


async def test_the_api_call_cap_fails_the_execution(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(max_api_calls=2)
    handler = RecordingHandler()
    code = (
        "import requests\n"
        "for i in range(5):\n"
        "    try:\n"
        f"        requests.get('{API}/item', params={{'i': i}})\n"
        "        print('call', i)\n"
        "    except Exception as exc:\n"
        "        print('caught', exc)\n"
    )
    result = await sandbox.execute(Cell(code=code), handler)
    assert not result.ok
    assert result.error_type == "ApiCallLimitExceeded"
    assert "2" in result.error
    assert result.stdout == "call 0\ncall 1\n"
    assert len(handler.requests) == 2


async def test_unsupported_requests_options_fail_clearly(sandbox: Sandbox) -> None:
    code = f"import requests\nrequests.get('{API}/x', verify=False)\nrequests.get('{API}/x', files={{'f': 'x'}})\n"
    handler = RecordingHandler()
    result = await sandbox.execute(Cell(code=code), handler)
    assert result.error_type == "TypeError"
    assert "files" in result.error
    assert len(handler.requests) == 1  # verify= is accepted and ignored
