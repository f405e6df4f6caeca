"""The policy LLM client: n samples per call from any OpenAI-compatible endpoint."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

import aiohttp
import openai
from openai.types.chat import ChatCompletion

from agent.config import DEFAULT_ENDPOINT_MODEL, LLMConfig
from agent.policy.base import Message, Samples, Usage, register_policy_model
from codetool_kernel.completions import malformed_completion
from codetool_kernel.errors import ConfigError, EndpointError
from codetool_kernel.lifecycle import AsyncLifecycle
from codetool_kernel.retry import RETRY_STATUSES, Backoff, TransientFault
from codetool_kernel.text import one_line


def _transport(config: LLMConfig) -> openai.DefaultAioHttpClient | None:
    """The SDK over aiohttp (about a third less CPU a call than its httpx pool); None: the SDK's default.

    It honours the proxy environment variables as the default does.
    """
    try:
        return openai.DefaultAioHttpClient(timeout=config.timeout_s)
    except RuntimeError:  # an SDK installed without its aiohttp extra
        return None


@register_policy_model("openai")
class LLMClient(AsyncLifecycle):
    """Samples step completions from the policy endpoint (the `openai` policy-model backend).

    Retries with exponential backoff (`codetool_kernel.retry`) on 429, 5xx, timeouts, connection errors
    and malformed answers (not JSON, no `choices`, a choice without a message, negative token
    counts), tops up when a server returns fewer than `n` choices, and turns every failure into
    one `EndpointError` line naming the endpoint and what was wrong.
    """

    def __init__(self, config: LLMConfig) -> None:
        if not config.base_url:
            raise ConfigError(f"model {config.model!r} needs an endpoint: set --base-url or OPENAI_BASE_URL")
        if config.model is None:
            config = config.model_copy(update={"model": DEFAULT_ENDPOINT_MODEL})
        self.config = config
        self._client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "EMPTY",
            timeout=config.timeout_s,
            max_retries=0,  # retried here, malformed answers included
            http_client=_transport(config),
        )
        self._backoff = Backoff(retries=config.max_retries, base_s=config.retry_backoff_s)
        self._slots = asyncio.Semaphore(config.max_concurrency)

    async def aclose(self) -> None:
        await self._client.close()

    async def sample(self, messages: Sequence[Message], *, n: int, stop: Sequence[str] = ()) -> Samples:
        """Return exactly `n` completions of `messages`, stopping at any of `stop`."""
        started = time.perf_counter()
        result = await self._call(messages, n, stop)
        rounds = 0
        while len(result.texts) < n:
            if rounds >= self.config.max_top_up_rounds:
                raise EndpointError(
                    f"{self.config.base_url} returned {len(result.texts)} of {n} choices after {rounds} extra calls"
                )
            rounds += 1
            missing = n - len(result.texts)
            # Servers that cap `n` (often at 1) are topped up with parallel single-sample calls.
            extra = await asyncio.gather(*(self._call(messages, 1, stop) for _ in range(missing)))
            for part in extra:
                result.texts.extend(part.texts)
                result.finish_reasons.extend(part.finish_reasons)
                result.usage.add(part.usage)
        del result.texts[n:], result.finish_reasons[n:]
        result.latency_s = time.perf_counter() - started
        return result

    async def chat(self, messages: Sequence[Message], **params: object) -> openai.types.chat.ChatCompletion:
        """One chat completion with well-formed choices (also used by final-answer writers and judges)."""

        async def attempt() -> openai.types.chat.ChatCompletion:
            async with self._slots:
                try:
                    response = await self._client.post(
                        "/chat/completions", body=_request_body(self.config.model, messages, params), cast_to=ChatCompletion
                    )
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise TransientFault(f"answered malformed JSON ({one_line(str(exc))})") from None
                except openai.OpenAIError as exc:
                    raise self._translate(exc) from None
            problem = malformed_completion(response)
            if problem is not None:
                raise TransientFault(f"answered {problem}")
            return response

        return await self._backoff.call(attempt, self._give_up)

    def _give_up(self, attempts: int, fault: str) -> EndpointError:
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        return EndpointError(f"LLM endpoint {self.config.base_url} {fault}{tries}")

    async def _call(self, messages: Sequence[Message], n: int, stop: Sequence[str]) -> Samples:
        response = await self.chat(
            messages,
            n=n,
            stop=list(stop) or None,
            temperature=self.config.temperature,
            top_p=self.config.top_p,
            max_tokens=self.config.max_tokens,
            extra_body=dict(self.config.extra_body) or None,
        )
        usage = Usage(requests=1)
        if response.usage is not None:
            usage.prompt_tokens = response.usage.prompt_tokens or 0
            usage.completion_tokens = response.usage.completion_tokens or 0
        choices = sorted(response.choices, key=lambda choice: choice.index)
        return Samples(
            texts=[choice.message.content or "" for choice in choices],
            finish_reasons=[choice.finish_reason for choice in choices],
            usage=usage,
        )

    def _translate(self, exc: openai.OpenAIError) -> Exception:
        """A `TransientFault` for what another attempt may fix, else the final `EndpointError`."""
        where = self.config.base_url
        if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
            return TransientFault(f"timed out after {self.config.timeout_s:g}s (set --llm-timeout)")
        if isinstance(exc, openai.APIConnectionError):
            return TransientFault(
                "cannot be reached; set --base-url or OPENAI_BASE_URL to a running OpenAI-compatible server"
            )
        if isinstance(exc, openai.APIStatusError) and exc.status_code in RETRY_STATUSES:
            return TransientFault(f"answered HTTP {exc.status_code}: {one_line(exc.message)}")
        if isinstance(exc, openai.AuthenticationError):
            return EndpointError(f"LLM endpoint {where} refused the API key; set OPENAI_API_KEY")
        if isinstance(exc, openai.NotFoundError):
            return EndpointError(f"LLM endpoint {where} does not serve model {self.config.model!r}; set --model")
        if isinstance(exc, openai.APIStatusError):
            return EndpointError(f"LLM endpoint {where} answered HTTP {exc.status_code}: {one_line(exc.message)}")
        return EndpointError(f"LLM endpoint {where} failed: {one_line(str(exc))}")


def _refused(exc: BaseException) -> bool:
    """Whether a "timeout" was a refused connection (the aiohttp transport reports those as timeouts)."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, aiohttp.ClientConnectorError) and not isinstance(cause, TimeoutError):
            return True
        cause = cause.__cause__
    return False


def _request_body(model: str, messages: Sequence[Message], params: dict[str, object]) -> dict[str, object]:
    """The chat-completions JSON body, posted as it is: the SDK's generic transform of typed params
    (walked recursively over every message on every call) cost more CPU than the rest of a step."""
    extra = params.pop("extra_body", None) or {}
    body: dict[str, object] = {"model": model, "messages": list(messages)}
    body.update((key, value) for key, value in params.items() if value is not None)
    body.update(extra)  # type: ignore[call-overload]
    return body

