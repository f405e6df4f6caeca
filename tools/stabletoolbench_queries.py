"""StableToolBench's queries: group files (`G1_instruction.json`, ...) in `test_instruction/` or,
for the paper's subset, `filter_test_instruction/`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from codetool_kernel.errors import DataError
from codetool_kernel.files import read_json
from tools.queries import Query, QuerySource, register_query_source

TEST_FOLDER = "test_instruction"
FILTERED_FOLDER = "filter_test_instruction"


@register_query_source("stabletoolbench")
class StableToolBenchQueries(QuerySource):
    """Queries with their API lists (`api_list`, `relevant APIs`); ids stay ints in `extra`."""

    def read(self, file: Path) -> list[Query]:
        return read_queries(file)

    def group_files(self, data: Path, *, filtered: bool = False) -> dict[str, Path]:
        folder = data / (FILTERED_FOLDER if filtered else TEST_FOLDER)
        if not folder.is_dir():
            raise DataError(f"{folder} does not exist: a StableToolBench folder holds {TEST_FOLDER}/G.json")
        return super().group_files(folder)


def read_queries(path: Path) -> list[Query]:
    """The queries of a group file, or of every group file in a folder."""
    if path.is_dir():
        return [query for file in sorted(path.glob("*.json")) for query in read_queries(file)]
    raw = read_json(path)
    if not isinstance(raw, list):
        raise DataError(f"{path}: expected a JSON list of queries, got {type(raw).__name__}")
    queries = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or "query" not in entry or "query_id" not in entry:
            raise DataError(f"{path}: entry {index} lacks query/query_id")
        api_list = entry.get("api_list")
        if not isinstance(api_list, list):
            raise DataError(f"{path}: query {entry['query_id']} has no api_list")
        queries.append(
            Query(
                query_id=str(entry["query_id"]),
                text=str(entry["query"]),
                api_list=tuple(api_list),
                relevant_apis=tuple(tuple(pair) for pair in entry.get("relevant APIs") or ()),
                group=path.stem,
                extra={"query_id": entry["query_id"]},
            )
        )
    return queries
