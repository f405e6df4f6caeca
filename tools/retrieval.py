"""BM25 retrieval of the APIs most relevant to a free-form query (`bm25s`, English stemming).

Each API is indexed by its name, URL path, description, parameter names and descriptions,
and any `extra["search_terms"]` a tool set adds (response fields, tool and category names).
Ties keep the pool's order, so results are deterministic.

Because a lexical match rarely finds the API that *produces* an id ("movies directed by
Sofia Coppola" never says "search person"), an API whose path holds `{thing_id}` brings the
pool's `/search/thing` API into the results right before it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from tools.toolset import ApiSpec

_WORD = re.compile(r"(?u)\b\w\w+\b")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_ID_PLACEHOLDER = re.compile(r"\{(\w+?)_id\}")
_STOPWORDS = frozenset(STOPWORDS_EN)


class ApiRetriever:
    """Ranks a fixed pool of `ApiSpec`s against free-form queries."""

    def __init__(self, apis: Sequence[ApiSpec]) -> None:
        self.apis = tuple(apis)
        self._stemmer = Stemmer.Stemmer("english")
        self._index = bm25s.BM25()
        corpus = [self._tokens(_indexed_text(api)) or ["_empty_"] for api in self.apis]
        if corpus:
            self._index.index(corpus, show_progress=False)
        self._providers = _id_providers(self.apis)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every API of the pool, in pool order."""
        if not self.apis:
            return np.zeros(0)
        known = [token for token in self._tokens(query) if token in self._index.vocab_dict]
        if not known:
            return np.zeros(len(self.apis))
        return np.asarray(self._index.get_scores(known), dtype=float)

    def search(self, query: str, k: int = 20) -> list[ApiSpec]:
        """The `k` best APIs for `query`, best first, each id-consuming API preceded by its id provider."""
        order = np.argsort(-self.scores(query), kind="stable")
        chosen: list[int] = []
        for index in order.tolist():
            for needed in (*self._providers.get(index, ()), index):
                if len(chosen) < k and needed not in chosen:
                    chosen.append(needed)
            if len(chosen) >= k:
                break
        return [self.apis[index] for index in chosen]

    def _tokens(self, text: str) -> list[str]:
        words = _WORD.findall(_CAMEL.sub(r"\1 \2", text).replace("_", " ").lower())
        return self._stemmer.stemWords([word for word in words if word not in _STOPWORDS])


def _indexed_text(api: ApiSpec) -> str:
    parts = [api.name, urlsplit(api.url).path, api.description]
    parts += [f"{parameter.name} {parameter.description}" for parameter in api.parameters]
    terms = api.extra.get("search_terms")
    if isinstance(terms, str):
        parts.append(terms)
    return " ".join(parts)


def _id_providers(apis: Sequence[ApiSpec]) -> dict[int, tuple[int, ...]]:
    search_paths = {urlsplit(api.url).path.rstrip("/").lower(): index for index, api in enumerate(apis)}
    searchers = {path.rsplit("/", 1)[-1]: index for path, index in search_paths.items() if "/search/" in path}
    providers: dict[int, tuple[int, ...]] = {}
    for index, api in enumerate(apis):
        found = tuple(searchers[thing] for thing in _ID_PLACEHOLDER.findall(api.url.lower()) if thing in searchers)
        if found:
            providers[index] = found
    return providers
