"""`python -m agent sandbox run ...` (the sandbox command line with the tool gateway) as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from sandbox.image import default_image_tag

from .conftest import open_sandbox_options, require_docker

REPO = Path(__file__).resolve().parents[2]


async def _cli(*args: str, command: tuple[str, ...] = ("agent", "sandbox")) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *command, "run", *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, stdout.decode(), stderr.decode()


def _script(tmp_path: Path, code: str) -> str:
    path = tmp_path / "cell.py"
    path.write_text(code)
    return str(path)


async def test_a_file_that_prints(tmp_path: Path) -> None:
    code, stdout, _ = await _cli(_script(tmp_path, "print('hello from the sandbox')\n"), "--timeout", "5")
    assert code == 0
    result = json.loads(stdout)
    assert result["ok"] is True
    assert result["stdout"] == "hello from the sandbox\n"
    assert result["error"] is None and result["api_calls"] == []
    assert result["duration_s"] > 0


async def test_a_file_that_fails(tmp_path: Path) -> None:
    code, stdout, _ = await _cli(_script(tmp_path, "print('partial')\nvalue = 1 / 0\n"))
    assert code == 1
    result = json.loads(stdout)
    assert (result["ok"], result["stdout"]) == (False, "partial\n")
    assert result["error"] == "ZeroDivisionError: division by zero"


async def test_an_api_call_is_refused_without_allow(tmp_path: Path) -> None:
    code, stdout, _ = await _cli(_script(tmp_path, "import requests\nrequests.get('https://api.example.test/x')\n"))
    assert code == 1
    result = json.loads(stdout)
    assert result["error"].startswith("ConnectionError: GET https://api.example.test/x: HTTP calls are refused")
    assert [call["url"] for call in result["api_calls"]] == ["https://api.example.test/x"]


async def test_usage_errors_exit_with_2(tmp_path: Path) -> None:
    code, stdout, stderr = await _cli(str(tmp_path / "missing.py"))
    assert code == 2 and stdout == ""
    assert "cannot read" in stderr
    code, _, stderr = await _cli(_script(tmp_path, "print(1)"), "--backend", "nonexistent")
    assert code == 2 and "unknown backend" in stderr


@pytest.fixture
async def api_server() -> AsyncIterator[str]:
    async def movies(request: web.Request) -> web.Response:
        return web.json_response({"query": request.query.get("query"), "path": request.path})

    app = web.Application()
    app.router.add_get("/3/search/movie", movies)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_allowed_calls_go_through_the_tool_gateway(tmp_path: Path, api_server: str) -> None:
    code = (
        "import requests\n"
        f"r = requests.get('{api_server}/3/search/movie', params={{'query': 'alien'}})\n"
        "print(r.status_code, r.json()['query'])\n"
        f"requests.get('{api_server}/elsewhere')\n"
    )
    exit_code, stdout, _ = await _cli(_script(tmp_path, code), "--allow", f"{api_server}/3/")
    assert exit_code == 1
    result = json.loads(stdout)
    assert result["stdout"] == "200 alien\n"
    assert result["error_type"] == "ConnectionError" and "not allowed" in result["error"]
    assert [(call["url"], call["status"]) for call in result["api_calls"]] == [
        (f"{api_server}/3/search/movie", 200),
        (f"{api_server}/elsewhere", None),
    ]


async def test_the_sandbox_alone_runs_a_file_but_has_no_gateway_to_allow_calls_through(tmp_path: Path) -> None:
    code, stdout, _ = await _cli(_script(tmp_path, "print(6 * 7)\n"), command=("sandbox",))
    assert code == 0 and json.loads(stdout)["stdout"] == "42\n"
    code, stdout, stderr = await _cli(_script(tmp_path, "print(1)\n"), "--allow", "http://127.0.0.1/", command=("sandbox",))
    assert code == 2 and stdout == ""
    assert "python -m agent sandbox run" in " ".join(stderr.replace("│", " ").split())


async def test_every_backend_runs_a_file(tmp_path: Path, backend: str) -> None:
    open_sandbox_options(backend, pool_size=1)  # docker: skip or fail here when it cannot run
    code, stdout, _ = await _cli(_script(tmp_path, "import json\nprint(json.dumps({'backend': 'ok'}))\n"), "--backend", backend)
    assert code == 0
    result = json.loads(stdout)
    assert (result["ok"], result["stdout"], result["backend"]) == (True, '{"backend": "ok"}\n', backend)


@pytest.mark.docker
async def test_build_image_is_idempotent() -> None:
    require_docker()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "build-image", cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0
    assert stdout.decode().strip() == f"{default_image_tag()} already up to date"
