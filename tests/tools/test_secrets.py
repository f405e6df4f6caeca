"""Secrets are attached where declared and nowhere else, and never come back, however encoded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import pytest

from codetool_kernel.protocol import ToolRequest, ToolResponse
from tests.tools.leaky_upstream import CARRIERS, ENCODINGS, HEADER_CARRIERS, NOT_IN_HEADERS, LeakyUpstream, leaked
from tools import Route, ToolGateway, ToolSet
from tools.gateway import TRUNCATED_HEADER
from tools.scrubbing import SecretScrubber
from tools.secrets import SecretSlot
from tools.stabletoolbench import SECRET_SLOTS as STB_SLOTS
from tools.stabletoolbench import TOOLBENCH_KEY_MASK
from tools.tmdb import SECRET_SLOTS as TMDB_SLOTS
from tools.tmdb import TMDB_TOKEN_MASK

PREFIX = "https://api.themoviedb.org/3"
STB_URL = "http://localhost:8080/virtual"
TMDB_REAL = "eyJhbGciOiJIUzI1NiJ9.tok/en+Zq9Xw8Tk3p4Rm.u7Vn_L2y~a"
STB_REAL = "tb-4c1d/9e+f0a2b7c8d3e6f1a0b9c~d"


def tmdb_toolset(upstream: str) -> ToolSet:
    return ToolSet(
        name="tmdb-test",
        apis=(),
        routes=(Route(prefix=PREFIX, upstream=upstream, secret_slots=TMDB_SLOTS),),
        secrets={TMDB_TOKEN_MASK: TMDB_REAL},
        docs="",
    )


def stb_toolset(upstream: str) -> ToolSet:
    return ToolSet(
        name="stb-test",
        apis=(),
        routes=(Route(prefix=STB_URL, upstream=upstream, secret_slots=STB_SLOTS),),
        secrets={TOOLBENCH_KEY_MASK: STB_REAL},
        docs="",
    )


@pytest.fixture
async def leaky() -> AsyncIterator[LeakyUpstream]:
    async with LeakyUpstream() as server:
        yield server


def cell_view(response: ToolResponse) -> str:
    """Everything of a response that reaches sandboxed code or a record."""
    record = response.call.model_dump_json() if response.call else ""
    return "\n".join([response.body, json.dumps(dict(response.headers)), response.error or "", record])


SHORT_LEAKS = ("prefix", "suffix", "middle", "prefix-percent", "base64-truncated")
"""Echoes of 12-20 characters: split in two, each half is below the fragment size that is masked."""


def cases() -> list[tuple[str, str]]:
    return [
        (encoding, carrier)
        for encoding in ENCODINGS
        for carrier in CARRIERS
        if not (carrier in HEADER_CARRIERS and encoding in NOT_IN_HEADERS)
        and not (carrier == "split" and encoding in SHORT_LEAKS)
    ]


@pytest.mark.parametrize(("encoding", "carrier"), cases())
async def test_an_echoed_bearer_token_never_reaches_the_cell(leaky: LeakyUpstream, encoding: str, carrier: str) -> None:
    async with ToolGateway() as gateway:
        session = gateway.session(tmdb_toolset(leaky.base_url))
        response = await session(
            ToolRequest(
                method="GET", url=f"{PREFIX}/reflect/{encoding}/{carrier}", headers={"Authorization": f"Bearer {TMDB_TOKEN_MASK}"}
            )
        )
    assert leaky.received[0]["headers"]["Authorization"] == f"Bearer {TMDB_REAL}"  # type: ignore[index]
    seen = cell_view(response)
    assert response.error is None and TMDB_TOKEN_MASK in seen
    assert not [leak for leak in leaky.leaks if len(leak) >= 8 and leak.strip() in seen]
    assert leaked(TMDB_REAL, seen) == []
    assert leaked(TMDB_REAL, json.dumps([call.model_dump(mode="json") for call in session.calls])) == []


# a header cannot hold a line break or NUL, and short echoes split in two fall below the fragment size
KEY_CASES = [
    (encoding, carrier)
    for carrier in ("json", "error", "split")
    for encoding in ENCODINGS
    if not (carrier == "split" and encoding in (*NOT_IN_HEADERS, *SHORT_LEAKS))
]


@pytest.mark.parametrize(("encoding", "carrier"), KEY_CASES)
async def test_an_echoed_toolbench_key_never_reaches_the_cell(leaky: LeakyUpstream, encoding: str, carrier: str) -> None:
    body = {"category": "c", "tool_name": "t", "api_name": "a", "tool_input": {}, "toolbench_key": TOOLBENCH_KEY_MASK}
    async with ToolGateway() as gateway:
        response = await gateway.session(stb_toolset(f"{leaky.base_url}/reflect/{encoding}/{carrier}"))(
            ToolRequest(method="POST", url=STB_URL, json_body=body)
        )
    assert json.loads(str(leaky.received[0]["body"]))["toolbench_key"] == STB_REAL
    assert leaked(STB_REAL, cell_view(response)) == []


async def test_a_mask_outside_its_slot_is_sent_as_the_literal_mask(leaky: LeakyUpstream) -> None:
    mask = TMDB_TOKEN_MASK
    async with ToolGateway() as gateway:
        session = gateway.session(tmdb_toolset(leaky.base_url))
        await session(
            ToolRequest(
                method="POST",
                url=f"{PREFIX}/p/{mask}?q={mask}",
                params={"api_key": mask, mask: "x"},
                headers={"X-Api-Key": mask, "Authorization-Extra": f"Bearer {mask}", "Authorization": f"Bearer {mask}"},
                json_body={"token": mask, "nested": {"Authorization": mask}, "list": [mask]},
            )
        )
        await session(ToolRequest(method="GET", url=f"{PREFIX}/own", headers={"Authorization": "Bearer my-own-token"}))
        await session(ToolRequest(method="GET", url=f"{PREFIX}/none"))
    sent, own, bare = leaky.received
    assert sent["path"] == f"/p/{mask}"
    assert ("q", mask) in sent["query"] and ("api_key", mask) in sent["query"] and (mask, "x") in sent["query"]
    headers = sent["headers"]
    assert headers["X-Api-Key"] == mask and headers["Authorization-Extra"] == f"Bearer {mask}"  # type: ignore[index]
    assert headers["Authorization"] == f"Bearer {TMDB_REAL}"  # type: ignore[index]
    assert json.loads(str(sent["body"])) == {"token": mask, "nested": {"Authorization": mask}, "list": [mask]}
    assert own["headers"]["Authorization"] == "Bearer my-own-token"  # type: ignore[index]
    assert "Authorization" not in bare["headers"]  # type: ignore[operator]
    everything = json.dumps(leaky.received)
    assert everything.count(TMDB_REAL) == 1


@pytest.mark.parametrize(
    ("data", "expect"),
    [
        (json.dumps({"toolbench_key": TOOLBENCH_KEY_MASK, "note": TOOLBENCH_KEY_MASK}), "json"),
        (f"toolbench_key={TOOLBENCH_KEY_MASK}&note={TOOLBENCH_KEY_MASK}", "form"),
        ({"toolbench_key": TOOLBENCH_KEY_MASK, "note": TOOLBENCH_KEY_MASK}, "form"),
    ],
)
async def test_the_key_field_is_filled_in_every_body_form(leaky: LeakyUpstream, data: object, expect: str) -> None:
    async with ToolGateway() as gateway:
        await gateway.session(stb_toolset(leaky.base_url))(ToolRequest(method="POST", url=STB_URL, data=data))
    raw = str(leaky.received[0]["body"])
    fields = json.loads(raw) if expect == "json" else dict(parse_qsl(raw))
    assert fields == {"toolbench_key": STB_REAL, "note": TOOLBENCH_KEY_MASK}


async def test_a_tool_set_without_a_real_key_sends_the_mask(leaky: LeakyUpstream) -> None:
    toolset = stb_toolset(leaky.base_url).model_copy(update={"secrets": {}})
    async with ToolGateway() as gateway:
        await gateway.session(toolset)(ToolRequest(method="POST", url=STB_URL, json_body={"toolbench_key": TOOLBENCH_KEY_MASK}))
    assert json.loads(str(leaky.received[0]["body"]))["toolbench_key"] == TOOLBENCH_KEY_MASK


@pytest.mark.parametrize(
    "kind", ["plain-no-charset", "no-content-type", "octet-stream", "charset", "bogus-charset", "gzip", "invalid-utf8"]
)
async def test_odd_and_oversized_answers_arrive_cut_with_the_marker(leaky: LeakyUpstream, kind: str) -> None:
    async with ToolGateway(max_response_bytes=4096) as gateway:
        session = gateway.session(tmdb_toolset(leaky.base_url))
        big = await session(ToolRequest(method="GET", url=f"{PREFIX}/odd/{kind}/100000"))
        small = await session(ToolRequest(method="GET", url=f"{PREFIX}/odd/{kind}/1024"))
    assert big.error is None and big.status == 200
    assert big.headers[TRUNCATED_HEADER] == "4096"
    assert big.body.endswith("[response cut by the tool gateway: it was longer than 4096 bytes]")
    assert len(big.body) < 4096 + 100
    assert small.error is None and small.status == 200 and TRUNCATED_HEADER not in small.headers
    assert "cut by the tool gateway" not in small.body and len(small.body) >= 1024 // 8


async def test_a_body_that_cannot_be_decompressed_is_one_clear_line(leaky: LeakyUpstream) -> None:
    async with ToolGateway() as gateway:
        response = await gateway.session(tmdb_toolset(leaky.base_url))(ToolRequest(method="GET", url=f"{PREFIX}/odd/corrupt-gzip/10"))
    assert response.status == 0 and response.error is not None and "\n" not in response.error
    assert response.error.startswith(f"GET {PREFIX}/odd/corrupt-gzip/10: ")


def test_the_scrubber_masks_each_encoding_and_leaves_other_text_alone() -> None:
    scrubber = SecretScrubber({"MASK": TMDB_REAL})
    for name, encode in ENCODINGS.items():
        text = f'{{"before": "ok", "echo": "{encode(TMDB_REAL)}", "after": "fine"}}'
        assert leaked(TMDB_REAL, scrubber.scrub(text)) == [], name
    ordinary = 'caf\u00e9 {"results": [{"id": 550, "title": "Fight Club", "poster": "/pB8BM7.jpg"}]} %41 \\u0041 &amp;'
    assert scrubber.scrub(ordinary) == ordinary
    assert not SecretScrubber({"MASK": ""}) and SecretScrubber({"MASK": ""}).scrub(TMDB_REAL) == TMDB_REAL


@pytest.mark.parametrize("real", ["k%41y\\u0042/z+Q~9wT3pLm&amp;", "short", "with space and ümlaut 12345"])
def test_secrets_of_any_shape_are_found_in_each_form(real: str) -> None:
    scrubber = SecretScrubber({"MASK": real})
    for name, encode in ENCODINGS.items():
        scrubbed = scrubber.scrub(f"<{encode(real)}>")
        assert leaked(real, scrubbed) == [] and real not in scrubbed, name


def test_slots_declare_one_secret_each() -> None:
    with pytest.raises(ValueError, match="exactly once"):
        SecretSlot(mask="M", place="header", name="Authorization", template="Bearer")
    assert TMDB_SLOTS[0].render("abc") == "Bearer abc"


@pytest.mark.parametrize("backend", ["restricted", "process", pytest.param("docker", marks=pytest.mark.docker)])
async def test_a_cell_asking_for_echoes_gets_masks_only(leaky: LeakyUpstream, backend: str) -> None:
    from sandbox import Cell, create_sandbox
    from tests.sandbox.conftest import TEST_LIMITS, open_sandbox_options

    code = (
        "import requests\n"
        "for name in ('base64-offset1', 'percent', 'json-slash', 'hex', 'prefix'):\n"
        f"    r = requests.get('{PREFIX}/reflect/' + name + '/json', headers=headers, params={{'key': headers['Authorization']}})\n"
        "    print(name, r.status_code, r.json()['echo'])\n"
        f"r = requests.get('{PREFIX}/reflect/raw/redirect', headers=headers)\n"
        "print(r.status_code, r.headers.get('Location'))\n"
    )
    preset = {"headers": {"Authorization": f"Bearer {TMDB_TOKEN_MASK}"}}
    sandbox = create_sandbox(backend, TEST_LIMITS, **open_sandbox_options(backend, 1))
    async with sandbox, ToolGateway() as gateway:
        session = gateway.session(tmdb_toolset(leaky.base_url))
        result = await sandbox.execute(Cell(code=code, preset=preset), session)
    assert result.ok, result.error
    assert result.stdout.count(TMDB_TOKEN_MASK) == 6 and result.stdout.count(" 200 ") == 5
    assert leaked(TMDB_REAL, result.model_dump_json()) == []
    assert [dict(entry["query"]).get("key") for entry in leaky.received] == [f"Bearer {TMDB_TOKEN_MASK}"] * 5 + [None]
    assert all(entry["headers"]["Authorization"] == f"Bearer {TMDB_REAL}" for entry in leaky.received)  # type: ignore[index]
