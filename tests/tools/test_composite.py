"""Several tool sources in one tool set: docs, routes, presets and secrets merged, calls reach each source."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from codetool_kernel.errors import ConfigError
from codetool_kernel.protocol import ToolRequest
from tools import ApiSpec, Query, Route, ToolGateway, ToolProvider, ToolSet, create_provider
from tools.composite import CompositeProvider, merge_toolsets
from tools.secrets import SecretSlot
from tools.virtual_tmdb import TMDB_TOKEN_MASK


class NotesProvider(ToolProvider):
    """A user's provider whose one API sits behind the echo upstream and which presets its own `headers`."""

    name = "notes"

    def __init__(self, upstream: str, prefix: str = "https://notes.example/api") -> None:
        self.upstream = upstream
        self.prefix = prefix

    def load_queries(self, path: str, ids: Sequence[str] | None = None) -> list[Query]:
        raise AssertionError("the primary source reads query files")

    def toolset_for(self, query: Query) -> ToolSet:
        assert query.api_list is None, "secondary sources never get the benchmark's API list"
        return ToolSet(
            name="notes",
            apis=(ApiSpec(name="GET_movie_movie_id", method="GET", url=f"{self.prefix}/echo", description="echoes notes"),),
            routes=(
                Route(
                    prefix=self.prefix,
                    upstream=self.upstream,
                    secret_slots=(SecretSlot(mask="NOTES-MASK", place="header", name="X-Key"),),
                ),
            ),
            preset={"headers": {"X-Key": "NOTES-MASK"}},
            secrets={"NOTES-MASK": "notes-real-secret"},
            docs="API 1: GET_movie_movie_id\n  Method and URL: GET https://notes.example/api/echo",
            usage_notes="Pass `headers` to every call.",
        )


async def test_two_sources_merge_into_one_tool_set_and_each_is_reachable(tmdb_spec: Path, echo) -> None:
    tmdb = create_provider("tmdb", spec_path=str(tmdb_spec), top_k=3)
    async with CompositeProvider([tmdb, NotesProvider(echo.base_url)]) as provider, ToolGateway() as gateway:
        assert provider.name == "tmdb+notes"
        toolset = provider.toolset_for(Query(query_id="q", text="movie keywords", api_list=("GET_movie_movie_id",)))
        names = [api.name for api in toolset.apis]
        assert names == ["GET_movie_movie_id", "notes_GET_movie_movie_id"]
        assert toolset.docs.startswith("## Tool source: tmdb") and "## Tool source: notes" in toolset.docs
        assert toolset.preset["headers"]["Authorization"] == f"Bearer {TMDB_TOKEN_MASK}"
        assert toolset.preset["notes_headers"] == {"X-Key": "NOTES-MASK"}
        assert "use `notes_headers` wherever this note says `headers`" in toolset.usage_notes
        assert "notes-real-secret" not in toolset.docs + toolset.usage_notes + str(toolset.preset)

        session = gateway.session(toolset, query_id="q")
        movie = await session(
            ToolRequest(method="GET", url="https://api.themoviedb.org/3/movie/597", headers=toolset.preset["headers"])
        )
        assert movie.status == 200 and movie.error is None
        notes = await session(
            ToolRequest(method="GET", url="https://notes.example/api/echo", headers=toolset.preset["notes_headers"])
        )
        assert notes.status == 200
        assert echo.received[-1]["headers"]["X-Key"] == "notes-real-secret"  # attached host-side
        assert "notes-real-secret" not in notes.body  # and masked in what came back
        refused = await session(ToolRequest(method="GET", url="https://elsewhere.example/x"))
        assert refused.status == 0 and refused.error
        assert [call.api_name for call in session.calls] == ["GET_movie_movie_id", "notes_GET_movie_movie_id", None]


def test_two_sources_may_not_serve_one_url_prefix() -> None:
    echo_url = "http://127.0.0.1:9"
    one = NotesProvider(echo_url).toolset_for(Query(query_id="q", text="x"))
    nested = NotesProvider(echo_url, prefix="https://notes.example/api/v2").toolset_for(Query(query_id="q", text="x"))
    with pytest.raises(ConfigError, match="already serves"):
        merge_toolsets([one, nested])


def test_one_mask_with_two_secrets_is_refused() -> None:
    def part(name: str, secret: str, host: str = "") -> ToolSet:
        return ToolSet(
            name=name,
            apis=(),
            routes=(Route(prefix=f"https://{host or name}.example", upstream="http://127.0.0.1:9"),),
            secrets={"MASK": secret},
            docs="",
        )

    with pytest.raises(ConfigError, match="secret mask"):
        merge_toolsets([part("a", "one"), part("b", "two")])
    merged = merge_toolsets([part("a", "same"), part("a", "same", host="b")])
    assert merged.name == "a+a2"


def test_no_source_at_all_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no tool source"):
        CompositeProvider([])
