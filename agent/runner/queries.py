"""Which benchmark queries a run solves: groups, the filtered subset, ids and limits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from agent.runner.layout import check_query_id
from agent.runner.settings import RunSettings
from codetool_kernel.errors import ConfigError, DataError
from tools.queries import Query, QuerySource, create_query_source


def select_queries(settings: RunSettings) -> list[Query]:
    """The run's queries, group by group in file order, after `query_ids` and `limit`.

    The benchmark's query source reads them: from the group files of a benchmark folder (the
    groups named in `settings.groups`), or from one query file, which is one group.
    """
    source = create_query_source(settings.benchmark)
    if settings.data.is_dir():
        groups = _named_groups(source, settings)
    else:
        queries = source.read(settings.data)
        names = sorted({query.group or settings.data.stem for query in queries}) or [settings.data.stem]
        if settings.groups and list(settings.groups) != names:
            raise ConfigError(
                f"--data {settings.data} is the query file of group {', '.join(names)}; drop --group or name that one"
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


def _named_groups(source: QuerySource, settings: RunSettings) -> list[list[Query]]:
    files = source.group_files(settings.data, filtered=settings.filtered)
    available = sorted(files)
    if not settings.groups:
        raise ConfigError(f"name the group(s) to run with --group: {', '.join(available)}")
    unknown = [group for group in settings.groups if group not in files]
    if unknown:
        raise ConfigError(f"no group {', '.join(unknown)} in {settings.data}; choose from {', '.join(available)}")
    return [source.read(files[group]) for group in settings.groups]


def group_of(query: Query, settings: RunSettings) -> str:
    """The group a query is reported under."""
    return query.group or Path(settings.data).stem
