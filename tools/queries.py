"""What a query is, and the `QuerySource` seam: reading a benchmark's query files.

Query sources are apart from tool providers: a provider builds the tool set a query may use, a
source reads the queries. Both built-in benchmarks have one of each under the same name
(`stabletoolbench`, `tmdb`); `register_query_source` adds another, and so does an installed
plug-in through the entry-point group `codetool.query_sources`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from codetool_kernel.errors import DataError
from codetool_kernel.files import read_json
from codetool_kernel.registry import Registry


class Query(BaseModel):
    """A user query, possibly from a benchmark file with its API list and gold answers."""

    model_config = ConfigDict(frozen=True)

    query_id: str
    text: str
    api_list: tuple[Any, ...] | None = None
    """Benchmark-given candidate APIs (StableToolBench dicts or TMDB endpoint names)."""
    relevant_apis: tuple[Any, ...] = ()
    gold_solution: tuple[str, ...] = ()
    """TMDB's gold API sequence, for the correct-path metric."""
    group: str | None = None
    extra: Mapping[str, Any] = Field(default_factory=dict)


class QuerySource(ABC):
    """Reads one benchmark's query files.

    A query file holds one group of queries; a benchmark folder holds a file per group, which
    `group_files` finds (every `*.json` file of the folder, unless the benchmark lays it out otherwise).
    """

    name: ClassVar[str]

    @abstractmethod
    def read(self, file: Path) -> list[Query]:
        """The queries of one query file, in file order (`DataError` when it cannot be read)."""

    def group_files(self, data: Path, *, filtered: bool = False) -> dict[str, Path]:
        """The query file of each group in the benchmark folder `data` (`filtered`: the benchmark's subset)."""
        files = {path.stem: path for path in sorted(data.glob("*.json"))}
        if not files:
            raise DataError(f"{data}: no *.json query files")
        return files

    def load(self, file: str | Path, ids: Sequence[str] | None = None) -> list[Query]:
        """The queries of one query file; only those of `ids` (in file order) when given."""
        queries = self.read(Path(file))
        if ids is None:
            return queries
        wanted = {str(query_id) for query_id in ids}
        missing = sorted(wanted - {query.query_id for query in queries})
        if missing:
            raise DataError(f"{file}: no query with id {', '.join(missing[:10])}")
        return [query for query in queries if query.query_id in wanted]


QUERY_SOURCES: Registry[type[QuerySource]] = Registry(
    "query source", ("tools.stabletoolbench_queries", "tools.tmdb_queries"), group="codetool.query_sources"
)
register_query_source = QUERY_SOURCES.register


def query_sources() -> list[str]:
    """Names of the registered query sources."""
    return QUERY_SOURCES.names()


def create_query_source(name: str) -> QuerySource:
    """The query source registered as `name`."""
    return QUERY_SOURCES.get(name)()


@register_query_source("plain")
class PlainQueries(QuerySource):
    """A JSON list of query texts, or of objects with `query` (and `qid` or `query_id`); ids default to `q<index>`."""

    def read(self, file: Path) -> list[Query]:
        raw = read_json(file)
        if not isinstance(raw, list):
            raise DataError(f"{file}: expected a JSON list of queries, got {type(raw).__name__}")
        queries = []
        for index, entry in enumerate(raw):
            text = entry if isinstance(entry, str) else entry.get("query") if isinstance(entry, Mapping) else None
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"{file}: entry {index} has no query text")
            query_id = entry.get("qid", entry.get("query_id", f"q{index}")) if isinstance(entry, Mapping) else f"q{index}"
            queries.append(Query(query_id=str(query_id), text=text))
        return queries
