"""BM25 retrieval over real API pools."""

from __future__ import annotations

from tests.tools.conftest import STB_G1, TMDB_SPEC
from tools import ApiRetriever, ApiSpec, load_tmdb_spec
from tools.stabletoolbench import DEFAULT_PROMPT_URL, api_spec, read_queries


def test_a_person_query_brings_the_person_search_among_the_top_results() -> None:
    retriever = ApiRetriever(load_tmdb_spec(TMDB_SPEC))
    names = [api.name for api in retriever.search("movies directed by Sofia Coppola", k=20)]
    assert "GET_search_person" in names
    assert names.index("GET_search_person") < names.index("GET_person_person_id_movie_credits")
    assert names[0].startswith("GET_") and len(names) == len(set(names)) == 20


def test_lexical_matches_rank_first() -> None:
    retriever = ApiRetriever(load_tmdb_spec(TMDB_SPEC))
    top = [api.name for api in retriever.search("search for a tv show by its name", k=3)]
    assert top[0] == "GET_search_tv"


def test_ties_keep_the_pool_order_and_results_repeat_exactly() -> None:
    pool = [
        ApiSpec(name=f"api_{i}", method="GET", url=f"http://h/thing/{i}", description="same words") for i in range(6)
    ]
    retriever = ApiRetriever(pool)
    assert [api.name for api in retriever.search("same words", k=4)] == ["api_0", "api_1", "api_2", "api_3"]
    assert [api.name for api in retriever.search("zzz unknown", k=2)] == ["api_0", "api_1"]
    assert retriever.search("same words", k=4) == retriever.search("same words", k=4)
    assert ApiRetriever([]).search("anything") == []


def test_stabletoolbench_queries_find_their_relevant_apis_in_the_pool_of_their_group() -> None:
    queries = read_queries(STB_G1)
    pool = {}
    for query in queries:
        for entry in query.api_list or ():
            spec = api_spec(entry, DEFAULT_PROMPT_URL, where="test")
            pool.setdefault(spec.name, spec)
    retriever = ApiRetriever(list(pool.values()))
    found = 0
    for query in queries:
        names = {api.name for api in retriever.search(query.text, k=20)}
        found += any(f"{tool}/{api}" in names for tool, api in query.relevant_apis)
    assert len(pool) > 400
    assert found >= 0.9 * len(queries)
