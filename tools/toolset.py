"""What a tool set is: the APIs one query may use, how the sandbox reaches them, and their docs."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from codetool_kernel.lifecycle import AsyncLifecycle
from tools.queries import Query, create_query_source
from tools.secrets import SecretSlot


class ApiParameter(BaseModel):
    """One parameter of an API, as the prompt documents it."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str = "string"
    description: str = ""
    required: bool = False
    default: Any = None
    location: str = "body"
    """Where it goes: `query`, `path`, `header`, `body` (a JSON body's field) or `form` (a form body's field)."""


class ApiSpec(BaseModel):
    """One API (endpoint) offered to the model."""

    model_config = ConfigDict(frozen=True)

    name: str
    method: str
    url: str
    """The URL exactly as the prompt shows it (TMDB path template, or the virtual server URL)."""
    description: str = ""
    parameters: tuple[ApiParameter, ...] = ()
    extra: Mapping[str, Any] = Field(default_factory=dict)
    """Tool-set specific facts, e.g. StableToolBench's category/tool/api names."""
    body_match: Mapping[str, str] = Field(default_factory=dict)
    """Body fields that single this API out when several share one URL (StableToolBench's
    `tool_name`/`api_name`); compared ignoring case, spaces and punctuation."""

    def matches(self, method: str, url: str, body: Any = None) -> bool:
        """Whether a call (`url` as the sandbox sent it, without query) is a call of this API."""
        if method.upper() != self.method.upper():
            return False
        if _template_regex(self.url.rstrip("/")).fullmatch(url.rstrip("/")) is None:
            return False
        if not self.body_match:
            return True
        if not isinstance(body, Mapping):
            return False
        return all(_loose(str(body.get(key, ""))) == _loose(value) for key, value in self.body_match.items())


class Route(BaseModel):
    """How a URL prefix the sandbox may call is served by the gateway.

    `prefix` is what generated code uses (and what the allow-list checks); calls are
    forwarded to `upstream` + the rest of the URL, with `inject_headers` added host-side and
    the tool set's secrets attached in the places `secret_slots` declares (and nowhere else).
    """

    model_config = ConfigDict(frozen=True)

    prefix: str
    upstream: str
    inject_headers: Mapping[str, str] = Field(default_factory=dict, repr=False)
    secret_slots: tuple[SecretSlot, ...] = ()


class ToolSet(BaseModel):
    """Everything one query needs to call its tools.

    `preset` holds the globals defined in the sandbox before any code runs (masked secrets
    only); `secrets` maps each mask to its real value and never leaves the host: the gateway
    attaches real values where the routes' `secret_slots` say, and masks them (in every usual
    encoding) in whatever comes back.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    apis: tuple[ApiSpec, ...]
    routes: tuple[Route, ...]
    preset: Mapping[str, Any] = Field(default_factory=dict)
    secrets: Mapping[str, str] = Field(default_factory=dict, repr=False, exclude=True)
    docs: str
    """The API documentation block for the policy's instruction."""
    usage_notes: str = ""
    """How to call this tool set from code (e.g. the POST body layout), added to the instruction."""

    def api_name_for(self, method: str, url: str, body: Any = None) -> str | None:
        """The name of the API a call targets, or None when no API of this set matches it."""
        bare_url = re.split(r"[?#]", url, maxsplit=1)[0]
        for api in self.apis:
            if api.matches(method, bare_url, body):
                return api.name
        return None


class ToolProvider(AsyncLifecycle, ABC):
    """Builds per-query `ToolSet`s and owns the servers they need (virtual APIs).

    Use it as an async context manager: `start` brings up embedded servers, `aclose`
    stops them. Reading benchmark queries is a query source's job (`tools.queries`).
    """

    name: str

    @abstractmethod
    def toolset_for(self, query: Query) -> ToolSet:
        """The tool set offered for `query` (its API list, or the retriever's top APIs)."""

    def load_queries(self, path: str, ids: Sequence[str] | None = None) -> list[Query]:
        """Read a benchmark query file (optionally only `ids`) with the query source of this provider's name."""
        return create_query_source(self.name).load(path, ids)


_PLACEHOLDER = re.compile(r"\{[^{}/]+\}")


@lru_cache(maxsize=4096)
def _template_regex(template: str) -> re.Pattern[str]:
    pieces = _PLACEHOLDER.split(template)
    return re.compile("[^/?#]+".join(re.escape(piece) for piece in pieces), re.IGNORECASE)


def _loose(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).casefold()
