"""`python -m tools serve-virtual` as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import aiohttp

from tests.tools.conftest import STB_G1

REPO = Path(__file__).resolve().parents[2]


async def test_serve_virtual_answers_one_request_from_its_cache(tmp_path: Path) -> None:
    cached = tmp_path / "Data" / "theclique_for_Data" / "transfermarkt_search.json"
    cached.parent.mkdir(parents=True)
    cached.write_text(json.dumps({str({"name": "messi"}): {"error": "", "response": "[{'name': 'Lionel Messi'}]"}}))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tools",
        "serve-virtual",
        "--cache",
        str(tmp_path),
        "--port",
        "0",
        "--queries",
        str(STB_G1),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        match = re.search(r"(http://127\.0\.0\.1:\d+/virtual) \((\d+) APIs known\)", banner)
        assert match, banner
        assert int(match.group(2)) > 400
        body = {
            "category": "Data",
            "tool_name": "TheClique",
            "api_name": "Transfermarkt search",
            "tool_input": {"name": "messi"},
            "strip": "",
            "toolbench_key": "",
        }
        async with aiohttp.ClientSession() as client:
            async with client.post(match.group(1), json=body) as response:
                assert response.status == 200
                assert await response.json() == {"error": "", "response": [{"name": "Lionel Messi"}]}
            async with client.post(match.group(1), json={**body, "tool_input": {"name": "neymar"}}) as response:
                simulated = await response.json()
        assert simulated["error"] == "" and "Players" in simulated["response"]
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    assert process.returncode == 0
