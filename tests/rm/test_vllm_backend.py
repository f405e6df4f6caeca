"""The vllm backend needs vLLM and a GPU; here only its refusal without the extra can run."""

from __future__ import annotations

from pathlib import Path

from rm import scorer_names
from tests.rm.helpers import error_without_module


def test_all_three_backends_are_registered() -> None:
    assert scorer_names() == ["hf", "openai", "vllm"]


def test_without_vllm_the_error_says_what_to_install(tiny_lm_dir: Path) -> None:
    assert error_without_module("vllm", "vllm", tiny_lm_dir) == (
        "RewardModelError this backend needs vllm: pip install 'codetool[vllm]'"
    )
