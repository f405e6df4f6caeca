"""RestBench-TMDB's queries: one JSON file, `[{"query": ..., "solution": [...], "url": [...]}, ...]`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from codetool_kernel.errors import DataError
from codetool_kernel.files import read_json
from tools.queries import Query, QuerySource, register_query_source


@register_query_source("tmdb")
class TmdbQueries(QuerySource):
    """Queries with their gold API sequence; ids are the file's `qid`, else `q<index>`; one group, `tmdb`."""

    def read(self, file: Path) -> list[Query]:
        raw = read_json(file)
        if not isinstance(raw, list):
            raise DataError(f"{file}: expected a JSON list of queries, got {type(raw).__name__}")
        queries = []
        for index, entry in enumerate(raw):
            if not isinstance(entry, Mapping) or not isinstance(entry.get("query"), str):
                raise DataError(f"{file}: entry {index} has no query text")
            queries.append(
                Query(
                    query_id=str(entry.get("qid", f"q{index}")),
                    text=entry["query"],
                    api_list=tuple(entry.get("api_list") or ()) or None,
                    gold_solution=tuple(entry.get("solution") or ()),
                    group="tmdb",
                    extra={"gold_urls": tuple(entry.get("url") or ())},
                )
            )
        return queries
