"""The blocking half of the `hf` policy backend: a transformers causal LM that writes completions.

Everything here runs on the backend's one worker thread, never on the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.config import LLMConfig
from agent.policy.base import Message, Samples, Usage
from codetool_kernel.errors import ConfigError
from codetool_kernel.text import one_line


def import_torch_transformers(backend: str) -> tuple[Any, Any]:
    """(torch, transformers), or the one-line `ConfigError` naming the extra to install."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ConfigError(
            f"the {backend} policy backend needs {exc.name or 'transformers'}: pip install 'codetool[{backend}]'"
        ) from None
    return torch, transformers


def load_pretrained(loader: Any, name: str, **options: Any) -> Any:
    """`loader.from_pretrained(name)` from a local folder or the Hugging Face cache, else downloaded.

    A download is tried only for a hub name not found locally; `HF_HUB_OFFLINE=1` forbids it.
    """
    path = Path(name).expanduser()
    if path.is_absolute() or name.startswith((".", "~")) or path.exists():
        if not path.is_dir():
            raise ConfigError(f"policy model folder {name} does not exist")
        try:
            return loader.from_pretrained(path, local_files_only=True, **options)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the policy model {name}: {one_line(exc)}") from None
    try:
        return loader.from_pretrained(name, local_files_only=True, **options)
    except (OSError, ValueError):
        pass  # not in the cache: downloaded below, unless downloads are off
    try:
        return loader.from_pretrained(name, **options)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"policy model {name} is not a local folder, not in the Hugging Face cache and could not be"
            f" downloaded ({one_line(exc)})"
        ) from None


def load_chat_tokenizer(transformers: Any, name: str) -> Any:
    tokenizer = load_pretrained(transformers.AutoTokenizer, name)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"the tokenizer of {name} has no chat template; the policy needs an instruct (chat) model")
    return tokenizer


def render_chat(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Token ids of the chat template applied to `messages`, ending with the assistant's header."""
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    # The template already holds the special tokens it wants (e.g. BOS); adding them again would double them.
    return tokenizer.encode(text, add_special_tokens=False)


class CausalLmWriter:
    """A tokenizer and a causal LM on the best device here (CUDA when torch sees one)."""

    def __init__(self, config: LLMConfig) -> None:
        torch, transformers = import_torch_transformers("hf")
        self._torch = torch
        self.config = config
        name = config.model or ""
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = load_chat_tokenizer(transformers, name)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.model = load_pretrained(transformers.AutoModelForCausalLM, name, dtype=dtype).to(self.device).eval()
        self._end_ids = _end_token_ids(self.model, self.tokenizer)
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self._end_ids)
        self.closing = threading.Event()
        """Set when the backend closes: a generation in progress stops at its next token."""

    def write(self, messages: Sequence[Message], n: int, stop: Sequence[str], seed: int, cancel: threading.Event) -> Samples:
        """`n` completions of `messages`, each cut before the first of `stop`; stops early once `cancel` is set."""
        torch = self._torch
        prompt = render_chat(self.tokenizer, messages)
        sampling = self.config.temperature > 0
        options: dict[str, Any] = {
            "max_new_tokens": self.config.max_tokens,
            "pad_token_id": self._pad_id,
            "eos_token_id": sorted(self._end_ids),
            "do_sample": sampling,
            # Greedy decoding gives one answer: it is written once and repeated.
            "num_return_sequences": n if sampling else 1,
            "stopping_criteria": [_Interrupt(torch, (cancel, self.closing))],
        }
        if sampling:
            options.update(temperature=self.config.temperature, top_p=self.config.top_p)
        if stop:
            options.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        torch.manual_seed(seed)
        input_ids = torch.tensor([prompt], device=self.device)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **options
            )
        rows = output[:, len(prompt) :].tolist()
        if not sampling:
            rows = rows * n
        samples = Samples(texts=[], finish_reasons=[], usage=Usage(prompt_tokens=len(prompt), requests=1))
        for row in rows:
            text, reason, used = self._completion(row, stop)
            samples.texts.append(text)
            samples.finish_reasons.append(reason)
            samples.usage.completion_tokens += used
        return samples

    def _completion(self, row: list[int], stop: Sequence[str]) -> tuple[str, str, int]:
        """(text cut before the first stop string, finish reason, tokens generated) of one generated row."""
        ends = [at for at, token in enumerate(row) if token in self._end_ids or token == self._pad_id]
        tokens = row[: ends[0]] if ends else row
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        found = [at for at in (text.find(marker) for marker in stop if marker) if at >= 0]
        if found:
            return text[: min(found)], "stop", len(tokens)
        return text, "stop" if ends else "length", len(tokens)


class _Interrupt:
    """A stopping criterion: every sequence is done once any of `events` is set."""

    def __init__(self, torch: Any, events: tuple[threading.Event, ...]) -> None:
        self._torch = torch
        self._events = events

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        done = any(event.is_set() for event in self._events)
        return self._torch.full((input_ids.shape[0],), done, dtype=self._torch.bool, device=input_ids.device)


def _end_token_ids(model: Any, tokenizer: Any) -> set[int]:
    """Token ids that end the assistant's turn: the generation config's eos ids and the tokenizer's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    if not ids:
        raise ConfigError("the policy model names no end-of-turn token (eos_token_id)")
    return ids

