"""Settings of the scorers and the server, built once at the entry point and passed down frozen."""

from __future__ import annotations

from pydantic import Field, field_validator

from codetool_kernel.validation import FrozenModel
from rm.prompt import DEFAULT_ANSWER_WORDS, check_answer_words


class BatchingConfig(FrozenModel):
    """How the in-process backends merge concurrent requests into one forward pass."""

    max_batch: int = Field(16, ge=1, description="most conversations in one forward pass")
    window_ms: float = Field(5.0, ge=0, description="how long the first waiting item waits for others")
    max_queue: int = Field(512, ge=1, description="most items waiting; beyond it requests are refused (503)")


class PrefixSharingConfig(FrozenModel):
    """How the hf backend runs a token prefix that several prompts share only once.

    Prompts of a micro-batch group when their common prefix is at least `min_tokens` long and at
    least `min_share` of every prompt in the group; the prefix is then computed once and each prompt's
    own suffix on top of it. The keys/values of computed prefixes stay in a store of `cache_tokens`
    tokens (least recently used out first), so a later prompt that starts with one (the next step of
    the same query) skips that part.
    Memory: each kept token costs 2 x layers x kv heads x head dim values (about 56 KiB for a 7B
    Qwen2 in bf16, so the default budget takes ~1.8 GiB there).
    """

    enabled: bool = True
    # An extra forward pass costs more than a short prefix saves; real judging prompts share thousands.
    min_tokens: int = Field(256, ge=1, description="shortest common prefix worth sharing")
    min_share: float = Field(0.5, gt=0, le=1, description="least part of each grouped prompt the prefix covers")
    cache_tokens: int = Field(
        32768, ge=0, description="prefix tokens whose keys/values are kept for later batches (0: none)"
    )


class EndpointConfig(FrozenModel):
    """Where the `openai` backend finds an OpenAI-compatible server of the PRM."""

    base_url: str | None = None
    api_key: str = "EMPTY"
    max_concurrency: int = Field(32, ge=1, description="most requests in flight to the endpoint")
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(2, ge=0, description="the openai client's own retries on 429/5xx/connection errors")


class ScorerConfig(FrozenModel):
    """Everything a `Scorer` backend needs; fields a backend does not use are ignored by it."""

    model: str = Field(min_length=1, description="local path or name of the PRM (served model name for openai)")
    answer_words: tuple[str, str] = DEFAULT_ANSWER_WORDS
    device: str = Field("cpu", description="cpu, cuda or cuda:N (hf backend)")
    max_prompt_tokens: int = Field(8192, ge=1, description="longer prompts are refused, never cut")
    top_logprobs: int = Field(20, ge=1, le=20, description="alternatives asked for by openai/vllm")
    batching: BatchingConfig = BatchingConfig()
    prefix_sharing: PrefixSharingConfig = PrefixSharingConfig()
    endpoint: EndpointConfig = EndpointConfig()

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        kind, _, index = device.partition(":")
        if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
            raise ValueError(f"device must be cpu, cuda or cuda:N, got {device!r}")
        return device

    @field_validator("answer_words")
    @classmethod
    def _two_words(cls, words: tuple[str, str]) -> tuple[str, str]:
        return check_answer_words(words)


class ServerConfig(FrozenModel):
    """The HTTP side of `python -m rm serve`."""

    host: str = "127.0.0.1"
    port: int = Field(8081, ge=0, le=65535, description="0 picks a free port")
    max_items: int = Field(64, ge=1, description="most candidates in one /score request")
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    shutdown_timeout_s: float = Field(30.0, ge=0, description="grace period for requests in flight on shutdown")
