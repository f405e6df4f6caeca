"""Which benchmark queries a run solves: groups, the filtered subset, ids and limits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from agent.runner.layout import check_query_id
from agent.runner.settings import RunSettings
from codetool_kernel.errors import ConfigError, DataError
from tools.toolset import Query, ToolProvider

TEST_FOLDER = "test_instruction"
FILTERED_FOLDER = "filter_test_instruction"


def select_queries(settings: RunSettings, provider: ToolProvider) -> list[Query]:
    """The run's queries, group by group in file order, after `query_ids` and `limit`."""
    if settings.benchmark == "tmdb":
        if settings.groups:
            raise ConfigError("--group applies to StableToolBench only; a TMDB query file is one group")
        groups = [provider.load_queries(str(settings.data))]
    elif settings.data.is_dir():
        groups = _stabletoolbench_groups(settings, provider)
    else:
        queries = provider.load_queries(str(settings.data))
        stem = settings.data.stem
        if settings.groups and settings.groups != (stem,):
            raise ConfigError(
                f"--data {settings.data} is the query file of group {stem}; drop --group or name that one"
            )
        groups = [queries]
    if settings.query_ids:
        wanted = set(settings.query_ids)
        known = {query.query_id for group in groups for query in group}
        missing = sorted(wanted - known)
        if missing:
            raise DataError(f"no query with id {', '.join(missing[:10])} in {settings.data}")
        groups = [[query for query in group if query.query_id in wanted] for group in groups]
    if settings.limit is not None:
        groups = [group[: settings.limit] for group in groups]
    selected = [query for group in groups for query in group]
    repeated = [query_id for query_id, count in Counter(q.query_id for q in selected).items() if count > 1]
    if repeated:
        raise DataError(f"query ids repeat across the selected groups: {', '.join(repeated[:10])}")
    for query in selected:
        check_query_id(query.query_id)
    return selected


def _stabletoolbench_groups(settings: RunSettings, provider: ToolProvider) -> list[list[Query]]:
    folder = settings.data / (FILTERED_FOLDER if settings.filtered else TEST_FOLDER)
    if not folder.is_dir():
        raise DataError(f"{folder} does not exist: --data must be laid out like StableToolBench ({TEST_FOLDER}/G.json)")
    available = sorted(path.stem for path in folder.glob("*.json"))
    if not settings.groups:
        raise ConfigError(f"name the group(s) to run with --group: {', '.join(available)}")
    unknown = [group for group in settings.groups if group not in available]
    if unknown:
        raise ConfigError(f"no group {', '.join(unknown)} in {folder}; choose from {', '.join(available)}")
    return [provider.load_queries(str(folder), group=group) for group in settings.groups]  # type: ignore[call-arg]


def group_of(query: Query, settings: RunSettings) -> str:
    """The group a query is reported under."""
    return query.group or Path(settings.data).stem
