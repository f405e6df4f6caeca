"""The provider shape shared by tool sets over a fixed pool of HTTP endpoints (any OpenAPI spec, TMDB).

Per query it offers the query's `api_list` (endpoint names) or the BM25 retriever's `top_k` best
endpoints, documented with `render_docs`, reachable under the provider's routes, authorised by
masked presets (`headers`, and `auth_params` when a secret goes in the query string).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from codetool_kernel.errors import DataError
from tools.api_docs import render_docs
from tools.openapi.security import Credentials
from tools.queries import create_query_source
from tools.retrieval import ApiRetriever
from tools.toolset import ApiSpec, Query, Route, ToolProvider, ToolSet


class EndpointToolProvider(ToolProvider):
    """Tool sets drawn from a pool of endpoints; subclasses load the pool (`use_endpoints`) and say
    where calls go (`route_targets`), how they are authorised (`credentials`) and how to call (`usage_notes`)."""

    label = "API"
    """How messages name the endpoints (`unknown TMDB endpoint(s) ...`)."""

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k
        self.apis: list[ApiSpec] = []
        self._by_name: dict[str, ApiSpec] = {}
        self._retriever: ApiRetriever | None = None

    def use_endpoints(self, apis: Sequence[ApiSpec]) -> None:
        """Make `apis` the pool that tool sets are drawn from."""
        self.apis = list(apis)
        self._by_name = {api.name: api for api in self.apis}
        self._retriever = None

    @property
    @abstractmethod
    def toolset_name(self) -> str:
        """The `ToolSet.name` (and query group) of this provider's tool sets."""

    @property
    @abstractmethod
    def credentials(self) -> Credentials:
        """The secret slots, masked presets and secrets of every tool set."""

    @property
    @abstractmethod
    def usage_notes(self) -> str:
        """How to call the endpoints from code, for the instruction."""

    @abstractmethod
    def route_targets(self) -> Sequence[tuple[str, str]]:
        """(prefix the code calls, where such calls really go) for every allowed base URL."""

    def select_apis(self, query: Query) -> list[ApiSpec]:
        """The query's `api_list` endpoints, or the `top_k` best for its text."""
        if query.api_list:
            unknown = [name for name in query.api_list if name not in self._by_name]
            if unknown:
                raise DataError(f"query {query.query_id}: unknown {self.label} endpoint(s) {', '.join(map(str, unknown))}")
            return [self._by_name[name] for name in query.api_list]
        if self._retriever is None:
            self._retriever = ApiRetriever(self.apis)
        return self._retriever.search(query.text, self.top_k)

    def toolset_for(self, query: Query) -> ToolSet:
        apis = self.select_apis(query)
        credentials = self.credentials
        preset: dict[str, Any] = {"headers": dict(credentials.headers)}
        if credentials.params:
            preset["auth_params"] = dict(credentials.params)
        return ToolSet(
            name=self.toolset_name,
            apis=tuple(apis),
            routes=tuple(
                Route(prefix=prefix, upstream=upstream, secret_slots=credentials.slots)
                for prefix, upstream in self.route_targets()
            ),
            preset=preset,
            secrets=dict(credentials.secrets),
            docs=render_docs(apis),
            usage_notes=self.usage_notes,
        )

    def load_queries(self, path: str, ids: Sequence[str] | None = None) -> list[Query]:
        """A RestBench-style JSON list (`{"qid", "query", "api_list" (endpoint names), "solution", "url"}` each),
        read as TMDB's query source reads it, in this tool set's group."""
        queries = create_query_source("tmdb").load(path, ids)
        return [query.model_copy(update={"group": self.toolset_name}) for query in queries]
