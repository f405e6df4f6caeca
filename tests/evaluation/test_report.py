"""The HTML report of the scripted StableToolBench run, read as text and rendered in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.runner.scenario import Sessions, finish, python_module

STB_IDS = ["588", "608", "1073", "1572", "1856", "2121", "2144", "2213", "2354", "2399"]


@pytest.fixture(scope="module")
def report(scripted_runs: Sessions, judged_run: None) -> Path:
    code, stdout, stderr = finish(python_module("evaluation", "report", str(scripted_runs.stb)))
    assert code == 0, stderr
    path = scripted_runs.stb / "eval" / "report.html"
    assert str(path) in stdout.replace("\n", "")
    return path


@pytest.fixture(scope="module")
def judged_run(scripted_runs: Sessions) -> None:
    """The report shows SoPR, so judge the run first (free when the metrics tests already did)."""
    code, _, stderr = finish(
        python_module(
            "evaluation",
            "sopr",
            str(scripted_runs.stb),
            "--judge-model",
            "judge-model",
            "--base-url",
            scripted_runs.stub.base_url,
        )
    )
    assert code == 0, stderr


def section(html: str, query_id: str) -> str:
    start = html.index(f'id="q-{query_id}"')
    end = html.find("<section", start)
    return html[start : end if end > 0 else len(html)]


def chromium_dom(page: Path, profile: Path) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CODETOOL_REQUIRE_CHROMIUM") == "1":
            pytest.fail("CODETOOL_REQUIRE_CHROMIUM=1 but no chromium on PATH")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_report_is_self_contained(report: Path):
    html = report.read_text()
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", html)
    assert "<style>" in html and "<script>" in html and html.count("<svg") == 4


def test_report_labels_simulated_api_answers(report: Path):
    html = report.read_text()
    assert "<th>data</th>" in html
    assert re.search(r'<span class="badge simulated"[^>]*>\d+ simulated API answers</span>', html)


def test_report_in_chromium(report: Path, tmp_path):
    dom = chromium_dom(report, tmp_path / "profile")
    assert "10 of 10 queries shown" in dom, "the page's script did not run"
    summary = dom[dom.index('id="summary"') : dom.index("</table>", dom.index('id="summary"'))]
    assert "G1_instruction" in summary and "56.67" in summary and "82.35" in summary
    assert "SoPR per group (%)" in dom and "Execution success per step depth (%)" in dom and "Latency (s)" in dom
    for query_id in STB_IDS:
        assert f'href="#q-{query_id}"' in dom and f'id="q-{query_id}"' in dom
    messi = section(dom, "588")
    chosen = re.findall(r'<details class="node chosen[^"]*" data-path="([^"]+)"', messi)
    assert chosen == ["1-1", "1-1-1", "1-1-1-1"]
    assert len(re.findall(r'<details class="node', messi)) == 6
    assert "TheClique/Transfermarkt search" in messi and "players:" in messi and "r_spot=1" in messi
    broken = section(dom, "1073")
    assert re.search(r'<details class="node status-1" data-path="1-1"', broken) and "KeyError" in broken
    written = section(dom, "1572")
    assert "Written answer for 1572." in written and ">llm<" in written
    assert "HTTP 500" in section(dom, "2213") and ">failed<" in section(dom, "2213")
