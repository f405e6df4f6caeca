"""`python -m rm serve` as a real subprocess."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from rm import RewardModelClient, ScorerConfig, create_scorer
from tests.rm.helpers import conversations, rm_server_process, spawn_rm


async def test_serve_answers_health_and_score_then_stops_cleanly_on_sigterm(tiny_lm_dir: Path) -> None:
    async with rm_server_process("--model", str(tiny_lm_dir), "--port", "0", "--max-batch", "8") as (process, url):
        async with RewardModelClient(url, retries=0) as client:
            health = await client.health()
            results = await client.score(conversations(3))
            after = await client.health()
        assert health.backend == "hf" and health.model == str(tiny_lm_dir) and health.counters["items"] == 0
        assert len(results) == 3 and all(0.0 <= r.score <= 1.0 for r in results)
        assert after.counters["items"] == 3
        assert after.counters["prefix_groups"] == 1, "the three candidates share their system prompt"
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            assert await process.wait() == 0


async def _run_to_end(*args: str) -> tuple[int, str]:
    process = await spawn_rm(*args)
    async with asyncio.timeout(120):
        _, stderr = await process.communicate()
    return process.returncode or 0, stderr.decode()


async def test_a_bad_model_path_exits_with_one_error_line(tmp_path: Path) -> None:
    code, stderr = await _run_to_end("serve", "--model", str(tmp_path / "missing"), "--port", "0")
    assert code == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot load the tokenizer" in errors[0]


async def test_bad_options_are_refused_before_loading_anything(tiny_lm_dir: Path) -> None:
    code, stderr = await _run_to_end("serve", "--model", str(tiny_lm_dir), "--device", "tpu")
    assert code == 2 and "error: invalid option: device: device must be cpu, cuda or cuda:N" in stderr
    code, stderr = await _run_to_end("serve", "--model", str(tiny_lm_dir), "--backend", "onnx")
    assert code == 2 and "error: unknown scorer backend 'onnx'; choose one of hf, openai, vllm" in stderr
    code, stderr = await _run_to_end("serve", "--model", "prm", "--backend", "openai")
    assert code == 2 and "error: the openai backend needs the endpoint's base URL (--base-url)" in stderr



async def test_no_prefix_sharing_switches_the_groups_off_and_scores_the_same(tiny_lm_dir: Path) -> None:
    items = conversations(3)  # one agent step: a shared system prompt, three candidates
    async with create_scorer("hf", ScorerConfig(model=str(tiny_lm_dir))) as scorer:
        shared = await scorer.score(items)
    args = ("--model", str(tiny_lm_dir), "--port", "0", "--no-prefix-sharing")
    async with rm_server_process(*args) as (_, url), RewardModelClient(url, retries=0) as client:
        plain, counters = await client.score(items), (await client.health()).counters
    assert counters["forward_passes"] == 1 and counters["prefix_groups"] == 0
    assert [r.score for r in plain] == pytest.approx([r.score for r in shared], abs=1e-5)
