"""Every kind of tool source in one query, from the `codetool` console script: an OpenAPI spec on the
command line, an MCP server from the config file, Python functions from a module in the working directory."""

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

from tests.support.openai_stub import OpenAIStub
from tests.support.policies import step, step_of, system_text
from tests.tools.conftest import API_KEY, TOKEN
from tests.tools.notes_api import NotesApi

REPO = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "codetool"
MCP_SERVER = REPO / "tests" / "support" / "mcp_server.py"
TOOLS_MODULE = '''
from tools import function_tool


@function_tool
def packing_list(sky: str, notes: int) -> list[str]:
    """What to pack for a trip, given the sky and how many notes are open."""
    return ["sunglasses" if sky == "sunny" else "umbrella", f"{notes} notebooks"]
'''


@pytest.fixture
async def notes_api() -> AsyncIterator[NotesApi]:
    async with NotesApi(api_key=API_KEY, token=TOKEN) as server:
        yield server


def three_sources_policy(notes_url: str) -> Any:
    def policy(body: dict[str, Any]) -> list[str]:
        docs = system_text(body)
        assert "## Tool source: openapi" in docs and "## Tool source: mcp" in docs and "## Tool source: functions" in docs
        assert API_KEY not in json.dumps(body) and TOKEN not in json.dumps(body)
        if step_of(body) == 1:
            code = (
                "import requests\n"
                f"notes = requests.get({notes_url!r}, headers=headers, params={{'tag': 'work'}}).json()\n"
                "sky = requests.post('http://tools.codetool/mcp/mcp_server/get_forecast', json={'city': 'Paris'}).json()"
                "['days'][0]['sky']\n"
                "packed = requests.post('http://tools.codetool/functions/packing_list', "
                "json={'sky': sky, 'notes': len(notes)}).json()\n"
                "print(sky, len(notes), packed)"
            )
            return [step(1, "Ask every source", code)] * body.get("n", 1)
        return [step(2, "Answer", "print(f'Pack {packed[0]} and {packed[1]}.')", finished=True)] * body.get("n", 1)

    return policy


async def test_one_query_uses_an_openapi_spec_an_mcp_server_and_python_functions(
    notes_api: NotesApi, tmp_path: Path
) -> None:
    spec = notes_api.write_spec(tmp_path)
    (tmp_path / "trip_tools.py").write_text(TOOLS_MODULE, encoding="utf-8")
    out = tmp_path / "trajectory.json"
    async with OpenAIStub(three_sources_policy(f"{notes_api.base_url}/v1/notes")) as stub:
        config = tmp_path / "config.yaml"
        config.write_text(
            "search: {n: 1}\nsandbox: {backend: restricted}\n"
            f"tools:\n  mcp: [{json.dumps(shlex.join([sys.executable, str(MCP_SERVER)]))}]\n",
            encoding="utf-8",
        )
        process = await asyncio.create_subprocess_exec(
            str(CONSOLE_SCRIPT), "solve", "What should I pack for Paris?", "--config", str(config),
            "--openapi", str(spec), "--tools", "trip_tools", "--base-url", stub.base_url, "--model", "stub-model",
            "--out", str(out), "--json",
            cwd=tmp_path,
            env={
                **os.environ, "OPENAI_API_KEY": "test", "PYTHONPATH": str(REPO),
                "CODETOOL_SECRET_API_KEY_AUTH": API_KEY, "CODETOOL_SECRET_BEARER_AUTH": TOKEN,
            },
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode == 0, stderr.decode()
    trajectory = json.loads(out.read_text(encoding="utf-8"))
    assert trajectory["toolset"] == "openapi+mcp+functions"
    assert trajectory["final_answer"].startswith("Pack sunglasses and 2 notebooks.")
    calls = [(call["api_name"], call["status"]) for call in trajectory["nodes"][0]["api_calls"]]
    assert calls == [("listNotes", 200), ("get_forecast", 200), ("packing_list", 200)]
    assert notes_api.received[0]["headers"]["X-API-Key"] == API_KEY
    assert API_KEY not in stdout.decode() and TOKEN not in out.read_text(encoding="utf-8")


def tmdb_and_mcp_policy(body: dict[str, Any]) -> list[str]:
    docs = system_text(body)
    assert "## Tool source: tmdb" in docs and "## Tool source: mcp" in docs
    if step_of(body) == 1:
        code = (
            "import requests\n"
            "people = requests.get('https://api.themoviedb.org/3/search/person', headers=headers,"
            " params={'query': 'Sofia Coppola'}).json()['results']\n"
            "sky = requests.post('http://tools.codetool/mcp/127.0.0.1-' + PORT + '/get_forecast',"
            " json={'city': 'Tokyo'}).json()['days'][0]['sky']\n"
            "print(len(people) > 0, sky)"
        )
        port = docs.split("http://tools.codetool/mcp/127.0.0.1-", 1)[1].split("/", 1)[0]
        return [step(1, "Ask both sources", f"PORT = {port!r}\n" + code)] * body.get("n", 1)
    return [step(2, "Answer", "print(f'Found her; the sky over Tokyo is {sky}.')", finished=True)] * body.get("n", 1)


async def test_a_benchmark_tool_set_and_an_http_mcp_server_from_python_m_agent(tmp_path: Path) -> None:
    server = await asyncio.create_subprocess_exec(sys.executable, str(MCP_SERVER), "--http", stdout=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(server.stdout.readline(), 60)  # type: ignore[union-attr]
        assert line.startswith(b"PORT "), line
        url = f"http://127.0.0.1:{int(line.split()[1])}/mcp"
        out = tmp_path / "trajectory.json"
        async with OpenAIStub(tmdb_and_mcp_policy) as stub:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent", "solve", "Is Sofia Coppola known, and how is the sky in Tokyo?",
                "--toolset", "tmdb", "--mcp", url, "--base-url", stub.base_url, "--model", "stub-model",
                "--n", "1", "--sandbox", "restricted", "--out", str(out),
                cwd=REPO, env={**os.environ, "OPENAI_API_KEY": "test"},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, stderr = await asyncio.wait_for(process.communicate(), 240)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)
    assert process.returncode == 0, stderr.decode()
    trajectory = json.loads(out.read_text(encoding="utf-8"))
    assert trajectory["toolset"] == "tmdb+mcp"
    assert trajectory["final_answer"].startswith("Found her; the sky over Tokyo is sunny.")
    calls = [(call["api_name"], call["status"]) for call in trajectory["nodes"][0]["api_calls"]]
    assert calls == [("GET_search_person", 200), ("get_forecast", 200)]
