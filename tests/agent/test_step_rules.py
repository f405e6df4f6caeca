"""The paper's rules that decide a step, each with a test that fails when the rule breaks."""

from __future__ import annotations

import pytest

from agent import CodeToolAgent
from codetool_kernel.nodepaths import STATUS_ERROR, STATUS_OK, STATUS_TOOL_FAILURE
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import by_step, step


async def _solve(config, stb_provider, stb_g1_file, policy):
    query = stb_provider.load_queries(str(stb_g1_file), ids=["588"])[0]
    async with OpenAIStub(policy) as stub:
        return await CodeToolAgent(config(stub.base_url)).solve(query, stb_provider.toolset_for(query))


MARKED = step(1, "marked", "print('Function executing from my_tool: the API is down')", finished=True)
CLEAN = step(1, "clean", "print('Messi plays for Inter Miami')", finished=True)


async def test_an_output_with_the_default_tool_failure_marker_gets_status_2_and_loses(
    stb_provider, stb_g1_file, config_for
):
    trajectory = await _solve(lambda base: config_for(base), stb_provider, stb_g1_file, by_step([[MARKED, CLEAN]]))
    marked, clean = trajectory.node("1-1"), trajectory.node("1-2")
    assert marked.error is None and "Function executing from" in marked.stdout, "it ran: only the marker fails it"
    assert (marked.status, marked.r_spot) == (STATUS_TOOL_FAILURE, 0.0)
    assert (clean.status, clean.r_spot) == (STATUS_OK, 1.0)
    assert trajectory.chosen_path == ["1-2"], "the marked step loses although it comes first"
    assert trajectory.to_json()["exec_res"]["1-1"]["status"] == 2


async def test_failure_markers_are_configurable_and_matched_without_case(stb_provider, stb_g1_file, config_for):
    quota = step(1, "quota", "print('ERROR: QUOTA EXCEEDED for this key')", finished=True)
    trajectory = await _solve(
        lambda base: config_for(base, failure_markers=["quota exceeded"]),
        stb_provider, stb_g1_file, by_step([[quota, MARKED]]),
    )  # fmt: skip
    custom, default = trajectory.node("1-1"), trajectory.node("1-2")
    assert (custom.status, custom.r_spot) == (STATUS_TOOL_FAILURE, 0.0)
    assert (default.status, default.r_spot) == (STATUS_OK, 1.0), "the default marker no longer counts"
    assert trajectory.chosen_path == ["1-2"]


BROKEN_START = step(1, "broken start", "x = undefined_name")
WORKING_START = step(1, "working start", "x = 2\nprint(x)")
FINISH = step(2, "answer", "print('answer', 1)", finished=True)


@pytest.mark.parametrize(("width", "expanded"), [(1, ["1-2"]), (2, ["1-1", "1-2"])])
async def test_beam_search_drops_the_lowest_reward_paths_beyond_its_width(
    stb_provider, stb_g1_file, config_for, width: int, expanded: list[str]
):
    trajectory = await _solve(
        lambda base: config_for(base, mode="beam", beam_width=width),
        stb_provider, stb_g1_file, by_step([[BROKEN_START, WORKING_START], [FINISH, FINISH]]),
    )  # fmt: skip
    broken, working = trajectory.node("1-1"), trajectory.node("1-2")
    assert (broken.status, broken.reward, working.reward) == (STATUS_ERROR, 0.0, 1.0)
    assert not broken.is_leaf, "the broken step stays open: only the beam width can drop it"
    parents = sorted({node.parent for node in trajectory.nodes if node.depth == 2})
    assert parents == expanded
    assert trajectory.chosen_path == ["1-2", "1-2-1"]
