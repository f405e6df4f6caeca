"""What the virtual API server answers when its cache has nothing: simulated API responses.

`TemplateSimulator` (default) fills the API's `template_response` shape with values drawn from
a generator seeded by the API and its input, so the same call always gets the same answer.
`LlmSimulator` asks an OpenAI-compatible endpoint to play the API and falls back to the
template simulator when the endpoint fails or answers something that is not JSON.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import openai
import structlog

from codetool_kernel.completions import malformed_completion
from codetool_kernel.text import truncate
from tools.response_cache import parse_literal
from tools.toolset import ApiSpec

log = structlog.get_logger(__name__)

Answer = dict[str, Any]
MAX_LIST_ITEMS = 5
MAX_DEPTH = 12
_LIST_OF = re.compile(r"list of (\w+) with length (\d+)")


class Simulator(Protocol):
    """Produces an answer `{"error": "", "response": ...}` for a call the cache cannot answer."""

    async def simulate(
        self, api: ApiSpec, tool_input: Mapping[str, Any], examples: Sequence[tuple[str, Any]] = ()
    ) -> Answer: ...


def load_template(raw: Any) -> Any:
    """A `template_response` as a structure: strings holding JSON (even cut-off JSON) are parsed."""
    if not isinstance(raw, str):
        return raw
    for candidate in (raw, *_closed_candidates(raw)):
        try:
            return parse_literal(candidate)
        except ValueError:
            continue
    return None


class TemplateSimulator:
    """Deterministic answers shaped like the API's `template_response`."""

    async def simulate(
        self, api: ApiSpec, tool_input: Mapping[str, Any], examples: Sequence[tuple[str, Any]] = ()
    ) -> Answer:
        return {"error": "", "response": self.response_for(api, tool_input)}

    def response_for(self, api: ApiSpec, tool_input: Mapping[str, Any]) -> Any:
        """The simulated `response` value for one call."""
        seed_text = json.dumps([api.name, dict(tool_input)], sort_keys=True, default=str)
        rng = random.Random(hashlib.sha256(seed_text.encode()).digest())
        template = load_template(api.extra.get("template_response"))
        if template in (None, {}, [], ""):
            words = " ".join(f"{key}={value}" for key, value in sorted(tool_input.items()))
            return {"result": f"{api.extra.get('api_name', api.name)} answered for {words or 'no input'}"}
        return _fill(template, "", tool_input, rng, 0)


def _fill(template: Any, key: str, tool_input: Mapping[str, Any], rng: random.Random, depth: int) -> Any:
    if depth > MAX_DEPTH:
        return None
    if isinstance(template, dict):
        return {
            name: _fill(value, name, tool_input, rng, depth + 1)
            for name, value in template.items()
            if name != "_list_length"
        }
    if isinstance(template, list):
        if len(template) == 1 and isinstance(template[0], dict):
            count = min(int(template[0].get("_list_length", 1) or 1), MAX_LIST_ITEMS)
            return [_fill(template[0], key, tool_input, rng, depth + 1) for _ in range(count)]
        if len(template) == 1 and isinstance(template[0], str) and _LIST_OF.fullmatch(template[0]):
            return _leaf(template[0], key, tool_input, rng, depth + 1)  # ["list of str with length 8"] is the list
        return [_fill(item, key, tool_input, rng, depth + 1) for item in template[:MAX_LIST_ITEMS]]
    if isinstance(template, str):
        return _leaf(template, key, tool_input, rng, depth)
    return template


def _leaf(type_name: str, key: str, tool_input: Mapping[str, Any], rng: random.Random, depth: int) -> Any:
    listed = _LIST_OF.fullmatch(type_name)
    if listed:
        count = min(int(listed.group(2)), MAX_LIST_ITEMS)
        return [_leaf(listed.group(1), key, tool_input, rng, depth + 1) for _ in range(count)]
    echoed = tool_input.get(key) if depth <= 1 else None  # echo inputs into top-level fields only
    if type_name == "str":
        return str(echoed) if echoed is not None else _text(key, rng)
    if type_name == "int":
        return echoed if isinstance(echoed, int) and not isinstance(echoed, bool) else rng.randint(1, 5000)
    if type_name == "float":
        return round(rng.uniform(0, 1000), 2)
    if type_name == "bool":
        return rng.random() < 0.5
    if type_name in ("NoneType", "None"):
        return None
    if type_name in ("empty list", "list"):
        return []
    if type_name == "dict":
        return {}
    return type_name


def _text(key: str, rng: random.Random) -> str:
    lowered = key.lower()
    number = rng.randint(1, 9999)
    if any(word in lowered for word in ("url", "link", "image", "href", "website")):
        return f"https://example.com/{lowered or 'item'}/{number}"
    if "date" in lowered or "time" in lowered:
        return f"20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if lowered == "id" or lowered.endswith("_id") or key.endswith("Id"):
        return f"{number:x}{rng.randint(16, 255):x}"
    return f"{key.replace('_', ' ') or 'value'} {number}"


def _closed_candidates(text: str) -> list[str]:
    """Ways to close JSON that was chopped off mid-way: as it ends, or cut back to its last complete member."""
    stack: list[str] = []
    in_string = escaped = False
    last_cut: tuple[int, list[str]] | None = None
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]":
            if not stack:
                return []
            stack.pop()
        elif char == "," and stack:
            last_cut = (index, list(stack))
    candidates = [] if in_string or not stack else [text + "".join(reversed(stack))]
    if last_cut is not None:
        cut, open_at_cut = last_cut
        candidates.append(text[:cut] + "".join(reversed(open_at_cut)))
    return candidates


_LLM_INSTRUCTIONS = (
    "You stand in for a web API. Given the API's documentation, the shape of its responses, "
    "a few earlier real answers and a new input, reply with the answer this API would give. "
    'Reply with one JSON object only: {"error": "", "response": <the API response>}. '
    "Keep it short (about 100 to 200 words of content), concrete and consistent with the input."
)


class LlmSimulator:
    """Answers from an LLM behind an OpenAI-compatible endpoint; falls back when that fails."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        timeout_s: float = 60.0,
        max_tokens: int = 1024,
        fallback: Simulator | None = None,
    ) -> None:
        self.model = model
        self.max_tokens = max_tokens
        self.fallback = fallback or TemplateSimulator()
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=1)

    async def simulate(
        self, api: ApiSpec, tool_input: Mapping[str, Any], examples: Sequence[tuple[str, Any]] = ()
    ) -> Answer:
        briefing = {
            "api": {
                "tool": api.extra.get("tool_name", ""),
                "name": api.extra.get("api_name", api.name),
                "description": api.description,
                "parameters": [p.model_dump(exclude={"location"}) for p in api.parameters],
                "response_shape": load_template(api.extra.get("template_response")),
            },
            "earlier_answers": [{"input": key, "answer": value} for key, value in examples],
            "input": dict(tool_input),
        }
        try:
            completion = await self._client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": _LLM_INSTRUCTIONS},
                    {"role": "user", "content": truncate(json.dumps(briefing, ensure_ascii=False, default=str), 6000)},
                ],
                max_tokens=self.max_tokens,
                temperature=0,
            )
            problem = malformed_completion(completion)
            if problem is not None or not completion.choices:
                raise ValueError(f"the endpoint answered {problem or 'no choices'}")
            return _answer_from_text(completion.choices[0].message.content or "")
        except (openai.OpenAIError, ValueError, IndexError) as exc:
            log.info("LLM simulator answer unusable, using fallback", api=api.name, reason=str(exc)[:200])
            return await self.fallback.simulate(api, tool_input, examples)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.close()


def _answer_from_text(text: str) -> Answer:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    parsed = json.loads(fenced.group(1) if fenced else text.strip())
    if not isinstance(parsed, dict):
        raise ValueError("the LLM answer is not a JSON object")
    if "response" not in parsed:
        return {"error": "", "response": parsed}
    return {"error": str(parsed.get("error") or ""), "response": parsed["response"]}
