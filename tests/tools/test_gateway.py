"""The tool gateway against a real loopback upstream."""

from __future__ import annotations

import asyncio
import json

import pytest

from codetool_kernel.errors import ConfigError, ToolGatewayError
from codetool_kernel.protocol import ToolRequest
from tests.tools.conftest import EchoUpstream
from tools import ApiSpec, Route, ToolGateway, ToolSet, UrlRefused, resolve_target
from tools.gateway import TRUNCATED_HEADER
from tools.secrets import SecretSlot

PREFIX = "https://api.themoviedb.org/3"
MASK = "MASKED_TOKEN"
REAL = "real-secret-4711"


SLOTS = (
    SecretSlot(mask=MASK, place="header", name="Authorization", template="Bearer {secret}"),
    SecretSlot(mask=MASK, place="body_field", name="token"),
)


def make_toolset(upstream: str, *, apis: tuple[ApiSpec, ...] = (), inject: dict[str, str] | None = None) -> ToolSet:
    return ToolSet(
        name="test",
        apis=apis,
        routes=(Route(prefix=PREFIX, upstream=upstream, inject_headers=inject or {}, secret_slots=SLOTS),),
        secrets={MASK: REAL},
        docs="",
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://api.themoviedb.org/3.evil.com/search",
        "https://api.themoviedb.org.evil.com/3/search",
        "https://api.themoviedb.org@evil.com/3/search",
        "https://api.themoviedb.org/3/../admin",
        "https://api.themoviedb.org/3/%2e%2e/admin",
        "https://api.themoviedb.org/3/a%2F..%2F..%2Fadmin",
        "https://api.themoviedb.org/30/search",
        "http://api.themoviedb.org/3/search",
        "https://api.themoviedb.org:8443/3/search",
        "ftp://api.themoviedb.org/3/search",
        "not a url at all",
    ],
)
async def test_urls_outside_the_prefixes_are_refused_without_reaching_upstream(echo: EchoUpstream, url: str) -> None:
    async with ToolGateway() as gateway:
        session = gateway.session(make_toolset(echo.base_url))
        response = await session(ToolRequest(method="GET", url=url))
    assert response.status == 0
    assert response.error is not None and "\n" not in response.error
    assert PREFIX in response.error
    assert response.call is not None and response.call.error == response.error
    assert session.calls == [response.call]
    assert echo.received == []


def test_allowed_urls_are_rewritten_onto_the_upstream_after_normalising() -> None:
    routes = (Route(prefix=PREFIX, upstream="http://127.0.0.1:9/up"),)
    assert resolve_target("https://API.themoviedb.org:443/3/search/person?query=a", routes).url == (
        "http://127.0.0.1:9/up/search/person?query=a"
    )
    assert (
        resolve_target("https://api.themoviedb.org/3/movie/./x/../550", routes).url == "http://127.0.0.1:9/up/movie/550"
    )
    assert resolve_target("https://api.themoviedb.org/3", routes).url == "http://127.0.0.1:9/up"
    with pytest.raises(UrlRefused, match="climbs above the root"):
        resolve_target("https://api.themoviedb.org/../../3/x", routes)


async def test_secrets_go_only_where_declared_and_come_back_masked(echo: EchoUpstream) -> None:
    toolset = make_toolset(echo.base_url + "/up", inject={"X-Injected": "host-side"})
    request = ToolRequest(
        method="POST",
        url=f"{PREFIX}/search/person",
        params={"key": MASK, "page": 1, "adult": False, "skip": None},
        headers={"Authorization": f"Bearer {MASK}"},
        json_body={"token": MASK, "nested": [MASK]},
    )
    async with ToolGateway() as gateway:
        session = gateway.session(toolset, query_id="q1")
        response = await session(request)

    seen = echo.received[0]
    assert seen["path"] == "/up/search/person"
    assert seen["headers"]["Authorization"] == f"Bearer {REAL}"
    assert seen["headers"]["X-Injected"] == "host-side"
    assert ["key", MASK] in seen["query"] and ["page", "1"] in seen["query"] and ["adult", "False"] in seen["query"]
    assert "skip" not in dict(seen["query"])
    assert json.loads(seen["body"]) == {"token": REAL, "nested": [MASK]}

    assert response.status == 200 and response.error is None
    assert REAL not in response.body and MASK in response.body
    assert response.headers["X-Echo-Authorization"] == f"Bearer {MASK}"
    recorded = response.call.model_dump_json() if response.call else ""
    assert REAL not in recorded and MASK in recorded
    assert REAL not in repr(toolset)


async def test_a_repeated_call_is_answered_from_the_memo(echo: EchoUpstream) -> None:
    request = ToolRequest(method="GET", url=f"{PREFIX}/movie/550", params={"language": "en"})
    async with ToolGateway() as gateway:
        session = gateway.session(make_toolset(echo.base_url))
        first = await session(request)
        second = await session(request)
        other_session = await gateway.session(make_toolset(echo.base_url))(request)
    assert len(echo.received) == 2  # one for the session, one for the other session
    assert second.body == first.body and second.status == 200
    assert [call.memo_hit for call in session.calls] == [False, True]
    assert other_session.call is not None and not other_session.call.memo_hit


async def test_concurrent_identical_calls_reach_upstream_once(echo: EchoUpstream) -> None:
    request = ToolRequest(method="GET", url=f"{PREFIX}/movie/550")
    async with ToolGateway() as gateway:
        session = gateway.session(make_toolset(echo.base_url))
        answers = await asyncio.gather(*(session(request) for _ in range(4)))
    assert len(echo.received) == 1
    assert sum(answer.call.memo_hit for answer in answers if answer.call) == 3


async def test_failed_calls_and_calls_with_other_headers_are_not_memoised(echo: EchoUpstream) -> None:
    async with ToolGateway() as gateway:
        session = gateway.session(make_toolset(echo.base_url))
        for _ in range(2):
            failed = await session(ToolRequest(method="GET", url=f"{PREFIX}/status/500"))
        await session(ToolRequest(method="GET", url=f"{PREFIX}/movie/1", headers={"Authorization": f"Bearer {MASK}"}))
        unauthorised = await session(ToolRequest(method="GET", url=f"{PREFIX}/movie/1"))
    assert failed.status == 500 and failed.error is None
    assert len(echo.received) == 4
    assert unauthorised.call is not None and not unauthorised.call.memo_hit


async def test_memo_off_sends_every_call(echo: EchoUpstream) -> None:
    request = ToolRequest(method="GET", url=f"{PREFIX}/movie/550")
    async with ToolGateway(memo=False) as gateway:
        session = gateway.session(make_toolset(echo.base_url))
        await session(request)
        await session(request)
    assert len(echo.received) == 2


async def test_api_names_are_resolved_by_url_template_and_by_body(echo: EchoUpstream) -> None:
    apis = (
        ApiSpec(
            name="GET_person_person_id_movie_credits", method="GET", url=f"{PREFIX}/person/{{person_id}}/movie_credits"
        ),
        ApiSpec(name="GET_person_popular", method="GET", url=f"{PREFIX}/person/popular"),
        ApiSpec(
            name="Tool A/Search",
            method="POST",
            url=f"{PREFIX}/virtual",
            body_match={"tool_name": "Tool A", "api_name": "Search"},
        ),
        ApiSpec(
            name="Tool A/Details",
            method="POST",
            url=f"{PREFIX}/virtual",
            body_match={"tool_name": "Tool A", "api_name": "Details"},
        ),
    )
    async with ToolGateway() as gateway:
        session = gateway.session(make_toolset(echo.base_url, apis=apis))
        await session(ToolRequest(method="GET", url=f"{PREFIX}/person/42/movie_credits?page=2"))
        await session(ToolRequest(method="GET", url=f"{PREFIX}/person/popular"))
        await session(
            ToolRequest(
                method="POST", url=f"{PREFIX}/virtual", data=json.dumps({"tool_name": "tool a", "api_name": "details"})
            )
        )
        await session(
            ToolRequest(method="POST", url=f"{PREFIX}/virtual", json_body={"tool_name": "Tool A", "api_name": "Search"})
        )
        await session(ToolRequest(method="GET", url=f"{PREFIX}/person/42/unknown"))
    assert [call.api_name for call in session.calls] == [
        "GET_person_person_id_movie_credits",
        "GET_person_popular",
        "Tool A/Details",
        "Tool A/Search",
        None,
    ]


async def test_a_slow_upstream_times_out_with_one_clear_line(echo: EchoUpstream) -> None:
    async with ToolGateway(timeout_s=30) as gateway:
        session = gateway.session(make_toolset(echo.base_url))
        response = await session(ToolRequest(method="GET", url=f"{PREFIX}/never", timeout_s=0.2))
    assert response.status == 0
    assert response.error == f"GET {PREFIX}/never: timed out after 0.2s"
    assert session.calls[0].status is None and session.calls[0].error == response.error


async def test_an_unreachable_upstream_is_a_clear_error(closed_port: int) -> None:
    async with ToolGateway() as gateway:
        session = gateway.session(make_toolset(f"http://127.0.0.1:{closed_port}"))
        response = await session(ToolRequest(method="GET", url=f"{PREFIX}/movie/550"))
    assert response.status == 0
    assert response.error is not None and "\n" not in response.error
    assert f"cannot connect to 127.0.0.1:{closed_port}" in response.error


async def test_an_oversized_response_is_cut_with_a_note(echo: EchoUpstream) -> None:
    async with ToolGateway(max_response_bytes=1000) as gateway:
        session = gateway.session(make_toolset(echo.base_url))
        big = await session(ToolRequest(method="GET", url=f"{PREFIX}/big/50000"))
        small = await session(ToolRequest(method="GET", url=f"{PREFIX}/big/1000"))
    assert big.status == 200
    assert big.body.startswith("x" * 1000) and big.body.count("x") == 1000
    assert "cut by the tool gateway" in big.body
    assert big.headers[TRUNCATED_HEADER] == "1000"
    assert small.body == "x" * 1000 and TRUNCATED_HEADER not in small.headers


async def test_concurrency_is_bounded(echo: EchoUpstream) -> None:
    echo.gate.clear()
    async with ToolGateway(concurrency=2) as gateway:
        session = gateway.session(make_toolset(echo.base_url))
        calls = [asyncio.create_task(session(ToolRequest(method="GET", url=f"{PREFIX}/item/{i}"))) for i in range(6)]
        await asyncio.wait_for(echo.reached.wait(), 10)

        async def others_queue_up() -> None:
            while gateway.queued_calls < 4:
                await asyncio.sleep(0)

        await asyncio.wait_for(others_queue_up(), 10)
        assert gateway.active_calls == 2 and echo.in_flight == 2
        echo.gate.set()
        answers = await asyncio.gather(*calls)
    assert [answer.status for answer in answers] == [200] * 6
    assert echo.max_in_flight == 2


async def test_a_gateway_must_be_started_and_well_configured(echo: EchoUpstream) -> None:
    gateway = ToolGateway()
    with pytest.raises(ToolGatewayError, match="not started"):
        await gateway.session(make_toolset(echo.base_url))(ToolRequest(method="GET", url=f"{PREFIX}/x"))
    with pytest.raises(ConfigError, match="concurrency"):
        ToolGateway(concurrency=0)


async def test_unsupported_methods_are_refused(echo: EchoUpstream) -> None:
    async with ToolGateway() as gateway:
        response = await gateway.session(make_toolset(echo.base_url))(ToolRequest(method="TRACE", url=f"{PREFIX}/x"))
    assert response.error is not None and "TRACE" in response.error
    assert echo.received == []
