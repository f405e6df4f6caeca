"""`agent solve` against faulty servers on loopback: every fault is one line, the right exit code, strict JSON."""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import assert_no_traceback, error_lines, finish, run, start, strict_json
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import coppola_policy, step_of
from tests.support.prm_stub import PrmStub


def solve_args(spec: Path, base_url: str, *extra: str) -> list[str]:
    return ["solve", "movies directed by Sofia Coppola", "--toolset", "tmdb", "--spec", str(spec),
            "--base-url", base_url, "--model", "stub-model", *extra]  # fmt: skip


@pytest.mark.parametrize("bad", [float("nan"), 7.5, -3.0, float("inf")])
async def test_a_prm_score_that_is_not_a_probability_fails_the_query_never_rewards(tmdb_spec, tmp_path, bad):
    out = tmp_path / "t.json"
    async with OpenAIStub(coppola_policy) as stub, PrmStub([[bad, 0.2]]) as prm:
        code, _, stderr = await run(
            "agent", *solve_args(tmdb_spec, stub.base_url, "--rm-url", prm.url, "--prm-retries", "1", "--out", str(out))
        )
    assert code == 1, stderr
    assert_no_traceback(stderr)
    (line,) = error_lines(stderr)
    assert f"PRM at {prm.url}" in line and "(2 attempts)" in line
    assert ("non-finite" in line) if bad != bad or bad == float("inf") else ("outside [0, 1]" in line)
    assert len(prm.requests) == 2, "a malformed PRM answer is retried like an HTTP error"
    saved = strict_json(out)
    assert saved["stop_reason"] == "error" and "PRM" in saved["error"]
    assert all(node["r_lat"] is None for node in saved["nodes"])


async def test_a_faulty_prm_falls_back_to_no_latent_when_configured(tmdb_spec, tmp_path):
    out, config = tmp_path / "t.json", tmp_path / "agent.yaml"
    config.write_text("rm:\n  fallback_to_no_latent: true\n  retries: 0\n")
    async with OpenAIStub(coppola_policy) as stub, PrmStub([[7.5]]) as prm:
        code, _, stderr = await run(
            "agent", *solve_args(tmdb_spec, stub.base_url, "--rm-url", prm.url, "--config", str(config), "--out", str(out))
        )
    assert code == 0, stderr
    saved = strict_json(out)
    assert saved["stop_reason"] == "finished"
    assert all(node["r_lat"] is None for node in saved["nodes"])
    assert any("PRM" in note and "outside [0, 1]" in note for note in saved["notes"]), saved["notes"]


async def test_a_prm_that_answers_nan_once_is_retried_and_its_next_answer_used(tmdb_spec, tmp_path):
    out = tmp_path / "t.json"
    async with OpenAIStub(coppola_policy) as stub, PrmStub([[float("nan")], [0.75]]) as prm:
        code, _, stderr = await run("agent", *solve_args(tmdb_spec, stub.base_url, "--rm-url", prm.url, "--out", str(out)))
    assert code == 0, stderr
    chosen = [node for node in strict_json(out)["nodes"] if node["chosen"]]
    assert [node["r_lat"] for node in chosen] == pytest.approx([0.75] * 3)


@pytest.mark.parametrize("kind", ["not-json", "no-choices", "null-choices", "bad-message", "negative-usage"])
async def test_a_malformed_llm_answer_is_retried(tmdb_spec, tmp_path, kind):
    async with OpenAIStub(coppola_policy) as stub:
        stub.malformed_next(kind, count=2)
        code, _, stderr = await run("agent", *solve_args(tmdb_spec, stub.base_url, "--n", "1", "--llm-retries", "2"))
    assert code == 0, stderr
    assert len(stub.requests) == 3 + 2


@pytest.mark.parametrize(
    ("kind", "fault"),
    [("not-json", "malformed JSON"), ("no-choices", "without `choices`"), ("bad-message", "without a `message`")],
)
async def test_a_persistently_malformed_llm_is_one_line_naming_endpoint_and_fault(tmdb_spec, tmp_path, kind, fault):
    out = tmp_path / "t.json"
    async with OpenAIStub(coppola_policy) as stub:
        stub.malformed_next(kind, count=100)
        code, _, stderr = await run(
            "agent", *solve_args(tmdb_spec, stub.base_url, "--llm-retries", "1", "--out", str(out))
        )
    assert code == 1, stderr
    assert_no_traceback(stderr)
    (line,) = error_lines(stderr)
    assert f"LLM endpoint {stub.base_url}" in line and fault in line and "(2 attempts)" in line
    assert strict_json(out)["stop_reason"] == "error"


async def test_out_is_checked_before_any_work(tmdb_spec, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    async with OpenAIStub(coppola_policy) as stub:
        for out, words in ((tmp_path, "is a directory"), (blocker / "t.json", "is a file, not a directory")):
            code, _, stderr = await run("agent", *solve_args(tmdb_spec, stub.base_url, "--out", str(out)))
            assert code == 2, stderr
            (line,) = error_lines(stderr)
            assert "--out" in line and words in line
        assert stub.requests == [], "nothing may be asked before the paths are checked"


class _StopAtStep:
    """Coppola's policy, which waits at `step` until released (the test interrupts meanwhile)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self, body: dict[str, Any]) -> list[str]:
        if step_of(body) == self.step:
            self.reached.set()
            self.release.wait(60)
        return coppola_policy(body)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_an_interrupted_solve_writes_its_partial_trajectory(tmdb_spec, tmp_path, signum, code):
    out = tmp_path / "t.json"
    policy = _StopAtStep(2)
    async with OpenAIStub(policy) as stub:
        try:
            process = await start("agent", *solve_args(tmdb_spec, stub.base_url, "--n", "1", "--out", str(out)))
            assert await asyncio.to_thread(policy.reached.wait, 60)
            process.send_signal(signum)
            returncode, _, stderr = await finish(process, timeout=60)
        finally:
            policy.release.set()
    assert returncode == code, stderr
    assert_no_traceback(stderr)
    assert stderr.strip().splitlines()[-1] == f"interrupted after 1 chosen steps; the partial trajectory is in {out}"
    saved = strict_json(out)
    assert saved["stop_reason"] == "interrupted" and saved["chosen_path"] == ["1-1"]
    assert saved["nodes"][0]["stdout"].startswith("person id:")


async def test_every_config_problem_is_reported_at_once(tmdb_spec, tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("llm:\n  temperature: -1\n  max_tokens: 0\nsearch:\n  n: 0\n")
    code, _, stderr = await run(
        "agent", *solve_args(tmdb_spec, "http://127.0.0.1:9/v1", "--config", str(config), "--llm-timeout", "0")
    )
    assert code == 2, stderr
    (line,) = error_lines(stderr)
    for key in ("llm.temperature", "llm.max_tokens", "search.n", "llm.timeout_s"):
        assert key in line, line
