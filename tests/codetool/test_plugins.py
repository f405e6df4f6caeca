"""A user's package plugs its own tool provider and sandbox in through `codetool`'s public API only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import codetool
from tests.support.openai_stub import OpenAIStub
from tests.support.policies import step, step_of


@pytest.fixture
async def weather_api() -> AsyncIterator[str]:
    async def temperature(request: web.Request) -> web.Response:
        return web.json_response({"city": request.query["city"], "celsius": 21})

    app = web.Application()
    app.router.add_get("/temp", temperature)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@codetool.register_provider("weather-plugin-test")
class WeatherProvider(codetool.ToolProvider):
    """One API on a loopback server, offered to every query."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def toolset_for(self, query: codetool.Query) -> codetool.ToolSet:
        from tools import Route  # a tool set's parts live with the tool sets

        return codetool.ToolSet(
            name="weather",
            apis=(),
            routes=(Route(prefix=f"{self.base_url}/", upstream=f"{self.base_url}/"),),
            docs=f"GET {self.base_url}/temp?city=NAME answers {{'city': NAME, 'celsius': C}}",
        )


@codetool.register_sandbox("recording-plugin-test")
class RecordingSandbox(codetool.Sandbox):
    """Runs every cell in the restricted backend and keeps the code it was given."""

    cells: list[str] = []

    def __init__(self, limits: Any = None, **options: Any) -> None:
        super().__init__(limits)
        self.inner = codetool.create_sandbox("restricted", limits, **options)

    async def start(self) -> None:
        await self.inner.start()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def execute(self, cell: Any, tools: Any = None) -> Any:
        RecordingSandbox.cells.append(cell.code)
        return await self.inner.execute(cell, tools)


def weather_policy(body: dict[str, Any]) -> list[str]:
    docs = body["messages"][0]["content"]
    base = docs[docs.index("GET http://") + 4 : docs.index("/temp?city")]
    if step_of(body) == 1:
        code = f"import requests\nanswer = requests.get('{base}/temp', params={{'city': 'Oslo'}}).json()\nprint(answer)"
        return [step(1, "Ask the weather API", code)]
    return [step(2, "Answer", "print(f\"It is {answer['celsius']} degrees in Oslo.\")", finished=True)]


async def test_a_registered_tool_provider_and_sandbox_solve_a_query(weather_api: str) -> None:
    async with OpenAIStub(weather_policy) as stub:
        trajectory = await codetool.solve_async(
            "How warm is it in Oslo?",
            tools="weather-plugin-test",
            tool_options={"base_url": weather_api},
            overrides={
                "llm": {"base_url": stub.base_url, "api_key": "test", "model": "stub-model", "max_retries": 0},
                "search": {"n": 1},
                "sandbox": {"backend": "recording-plugin-test", "options": {"pool_size": 1}},
            },
        )
    assert trajectory.final_answer == "It is 21 degrees in Oslo.", [node.error for node in trajectory.nodes]
    calls = [call for node in trajectory.chosen_nodes() for call in node.api_calls]
    assert [(call.url, call.status) for call in calls][0] == (f"{weather_api}/temp", 200)
    assert any("/temp" in code for code in RecordingSandbox.cells)


def test_an_unregistered_name_lists_the_registered_ones() -> None:
    with pytest.raises(codetool.ConfigError, match="weather-plugin-test"):
        codetool.create_provider("no-such-provider")


class PrefersB:
    """An in-process latent scorer: the candidate that prints B is the good one."""

    def __init__(self) -> None:
        self.contexts: list[codetool.ScoringContext] = []

    async def score(self, context: codetool.ScoringContext) -> list[codetool.LatentScore]:
        self.contexts.append(context)
        return [codetool.LatentScore(score=0.9 if "'B'" in node.code else 0.1) for node in context.candidates]

    async def aclose(self) -> None:
        pass


def two_answers(body: dict[str, Any]) -> list[str]:
    return [step(1, "Answer", f"print({letter!r})", finished=True) for letter in "AB"]


async def test_a_latent_scorer_of_ones_own_picks_the_step(weather_api: str) -> None:
    scorer = PrefersB()
    async with OpenAIStub(two_answers) as stub:
        trajectory = await codetool.solve_async(
            "A or B?",
            tools="weather-plugin-test",
            tool_options={"base_url": weather_api},
            overrides={
                "llm": {"base_url": stub.base_url, "api_key": "test", "model": "stub-model", "max_retries": 0},
                "search": {"n": 2, "mode": "no-spot"},
            },
            scorer=scorer,
        )
    assert trajectory.final_answer == "B", [node.error for node in trajectory.nodes]
    assert [len(context.candidates) for context in scorer.contexts] == [2]


def never_finishes(body: dict[str, Any]) -> list[str]:
    number = step_of(body)
    return [step(number, "One more step", f"print({number})")] * body.get("n", 1)


async def test_beam_search_stops_at_the_depth_limit(weather_api: str) -> None:
    async with OpenAIStub(never_finishes) as stub:
        trajectory = await codetool.solve_async(
            "Count on.",
            tools="weather-plugin-test",
            tool_options={"base_url": weather_api},
            overrides={
                "llm": {"base_url": stub.base_url, "api_key": "test", "model": "stub-model", "max_retries": 0},
                "search": {"n": 2, "mode": "beam", "beam_width": 2, "max_depth": 2},
            },
            scorer=PrefersB(),
        )
    assert max(node.depth for node in trajectory.nodes) == 2
    assert len(trajectory.chosen_path) == 2 and trajectory.stop_reason == "max_depth"


def _settings(stub: OpenAIStub, **search: Any) -> dict[str, Any]:
    return {
        "llm": {"base_url": stub.base_url, "api_key": "test", "model": "stub-model", "max_retries": 0},
        "search": search,
    }


async def test_a_search_strategy_takes_any_selection_rule(weather_api: str) -> None:
    async with OpenAIStub(never_finishes) as stub:
        trajectory = await codetool.solve_async(
            "Count on.",
            tools="weather-plugin-test",
            tool_options={"base_url": weather_api},
            overrides=_settings(stub, strategy="beam", mode="no-latent", n=2, beam_width=1, max_depth=3),
        )
    depths = sorted(node.depth for node in trajectory.nodes)
    assert depths == [1, 1, 2, 2, 3, 3], "a beam of width 1 grows one path of the two candidates per step"
    assert trajectory.mode == "beam:no-latent" and all(node.r_lat is None for node in trajectory.nodes)
    assert len(trajectory.chosen_path) == 3 and trajectory.stop_reason == "max_depth"


async def test_the_tree_strategy_expands_every_node_and_answers_with_the_best_path(weather_api: str) -> None:
    async with OpenAIStub(two_answers_then_more) as stub:
        trajectory = await codetool.solve_async(
            "A or B?",
            tools="weather-plugin-test",
            tool_options={"base_url": weather_api},
            overrides=_settings(stub, strategy="tree", mode="no-spot", n=2, max_depth=2),
            scorer=PrefersB(),
        )
    assert sorted(node.path for node in trajectory.nodes) == ["1-1", "1-1-1", "1-1-2", "1-2", "1-2-1", "1-2-2"]
    assert trajectory.mode == "tree:no-spot"
    assert trajectory.final_answer == "B" and trajectory.chosen_path == ["1-2", "1-2-2"]


def two_answers_then_more(body: dict[str, Any]) -> list[str]:
    number = step_of(body)
    if number == 1:
        return [step(1, "Start", f"x = {letter!r}\nprint(x)") for letter in "AB"]
    return [step(2, "Answer", f"print({letter!r})", finished=True) for letter in "AB"]


async def test_mode_beam_still_means_beam_search_and_says_it_is_deprecated(
    weather_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with OpenAIStub(never_finishes) as stub:
        trajectory = await codetool.solve_async(
            "Count on.",
            tools="weather-plugin-test",
            tool_options={"base_url": weather_api},
            overrides=_settings(stub, mode="beam", n=2, beam_width=1, max_depth=2),
            scorer=PrefersB(),
        )
    assert trajectory.mode == "beam" and len(trajectory.nodes) == 4
    assert all(node.r_lat is not None for node in trajectory.nodes), "the codetool rule asks the scorer"
    captured = capsys.readouterr()
    assert "deprecated" in captured.err and "--strategy beam" in captured.err


def test_mode_beam_with_another_strategy_is_one_line() -> None:
    with pytest.raises(codetool.ConfigError, match="mode beam means strategy beam") as info:
        codetool.build_config(overrides={"search": {"mode": "beam", "strategy": "tree"}})
    assert "\n" not in str(info.value)


@codetool.register_search_strategy("first-candidate-plugin-test")
class FirstCandidate(codetool.SearchStrategy):
    """Always keeps the first candidate, without asking the selection rule."""

    async def search(self, run: Any, expander: Any, judge: Any) -> list[Any]:
        path: list[Any] = []
        while not path or not (path[-1].is_leaf or len(path) >= self.config.max_depth):
            first = (await expander.expand(run, path))[0]
            first.chosen = True
            path.append(first)
        return path


async def test_a_registered_search_strategy_grows_the_tree(weather_api: str) -> None:
    async with OpenAIStub(never_finishes) as stub:
        trajectory = await codetool.solve_async(
            "Count on.",
            tools="weather-plugin-test",
            tool_options={"base_url": weather_api},
            overrides=_settings(stub, strategy="first-candidate-plugin-test", n=2, max_depth=3),
        )
    assert trajectory.chosen_path == ["1-1", "1-1-1", "1-1-1-1"]
    assert trajectory.mode == "first-candidate-plugin-test:codetool"


async def test_an_unknown_strategy_fails_before_any_request(weather_api: str) -> None:
    async with OpenAIStub(never_finishes) as stub:
        with pytest.raises(codetool.ConfigError, match="unknown search strategy 'sideways'.*greedy") as info:
            await codetool.solve_async(
                "Count on.", tools="weather-plugin-test", tool_options={"base_url": weather_api},
                overrides=_settings(stub, strategy="sideways"),
            )  # fmt: skip
    assert stub.requests == [] and "first-candidate-plugin-test" in str(info.value)


PLUGIN_SOURCE = """
from pathlib import Path

import codetool
from tools import Route


class Weather(codetool.ToolProvider):
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def toolset_for(self, query: codetool.Query) -> codetool.ToolSet:
        return codetool.ToolSet(
            name="weather",
            apis=(),
            routes=(Route(prefix=self.base_url + "/", upstream=self.base_url + "/"),),
            docs=f"GET {self.base_url}/temp?city=NAME answers {{'city': NAME, 'celsius': C}}",
        )


class Lines(codetool.QuerySource):
    def read(self, file: Path) -> list[codetool.Query]:
        lines = file.read_text().splitlines()
        return [codetool.Query(query_id=f"line{n}", text=text) for n, text in enumerate(lines, start=1)]
"""

ENTRY_POINTS = """
[codetool.tool_providers]
weather-entry-point-test = weather_entry_point_plugin:Weather
broken-entry-point-test = no_such_module_of_a_plugin:Provider

[codetool.query_sources]
lines-entry-point-test = weather_entry_point_plugin:Lines
"""


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A distribution installed into a site folder on sys.path, its plug-ins declared as entry points."""
    site = tmp_path / "site"
    dist_info = site / "weather_entry_point_plugin-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: weather-entry-point-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    (site / "weather_entry_point_plugin.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(site))
    return site


async def test_an_installed_plugin_is_found_through_its_entry_point(installed_plugin: Path, weather_api: str) -> None:
    provider = codetool.create_provider("weather-entry-point-test", base_url=weather_api)
    assert type(provider).__module__ == "weather_entry_point_plugin" and provider.name == "weather-entry-point-test"
    async with OpenAIStub(weather_policy) as stub:
        trajectory = await codetool.solve_async(
            "How warm is it in Oslo?",
            tools="weather-entry-point-test",
            tool_options={"base_url": weather_api},
            overrides=_settings(stub, n=1),
        )
    assert trajectory.final_answer == "It is 21 degrees in Oslo.", [node.error for node in trajectory.nodes]


def test_a_broken_entry_point_is_one_line_naming_it(installed_plugin: Path) -> None:
    with pytest.raises(codetool.ConfigError) as info:
        codetool.create_provider("broken-entry-point-test")
    message = str(info.value)
    assert "\n" not in message and "broken-entry-point-test" in message and "no_such_module_of_a_plugin" in message
    assert "codetool.tool_providers" in message
    with pytest.raises(codetool.ConfigError, match="weather-entry-point-test"):
        codetool.create_provider("no-such-provider")


def test_an_installed_query_source_is_a_benchmark(installed_plugin: Path, tmp_path: Path) -> None:
    questions = tmp_path / "questions.txt"
    questions.write_text("How warm is it in Oslo?\nAnd in Bergen?\n")
    source = codetool.create_query_source("lines-entry-point-test")
    assert [query.text for query in source.load(questions, ids=["line2"])] == ["And in Bergen?"]
    settings = codetool.RunSettings(benchmark="lines-entry-point-test", data=questions, out=tmp_path / "run")
    assert settings.benchmark == "lines-entry-point-test"


@codetool.register_query_source("numbered-plugin-test")
class Numbered(codetool.QuerySource):
    """Numbered questions, one per line; a folder holds one file per group."""

    def read(self, file: Path) -> list[codetool.Query]:
        return [
            codetool.Query(query_id=f"{file.stem}-{n}", text=text, group=file.stem)
            for n, text in enumerate(file.read_text().splitlines(), start=1)
        ]


def test_the_runner_reads_a_registered_query_source_s_groups(tmp_path: Path) -> None:
    from agent.runner import select_queries

    folder = tmp_path / "questions"
    folder.mkdir()
    (folder / "easy.json").write_text("one\ntwo\n")
    (folder / "hard.json").write_text("three\n")
    settings = codetool.RunSettings(benchmark="numbered-plugin-test", data=folder, out=tmp_path / "run", groups=("hard", "easy"))
    assert [query.query_id for query in select_queries(settings)] == ["hard-1", "easy-1", "easy-2"]
    with pytest.raises(codetool.ConfigError, match="no group medium .* choose from easy, hard"):
        select_queries(settings.model_copy(update={"groups": ("medium",)}))


MY_INSTRUCTION = """You write Python, one step per reply, for a weather desk.
APIs:
{api_docs}
Notes: {usage_notes}
Output is cut to {feedback_chars} characters. End with [All Finished] before [Step k Finished].
"""


async def test_prompt_templates_from_a_file_and_from_text(weather_api: str, tmp_path: Path) -> None:
    instruction_file = tmp_path / "instruction.txt"
    instruction_file.write_text(MY_INSTRUCTION)
    prompts = {
        "instruction": str(instruction_file),
        "task": "Weather question: {query}",
        "feedback": "Step {step} printed:\n{output}\nNow step {next_step}.",
    }
    async with OpenAIStub(weather_policy) as stub:
        trajectory = await codetool.solve_async(
            "How warm is it in Oslo?",
            tools="weather-plugin-test",
            tool_options={"base_url": weather_api},
            overrides={**_settings(stub, n=1), "prompts": prompts},
        )
    assert trajectory.final_answer == "It is 21 degrees in Oslo."
    first, second = (body["messages"] for body in stub.requests)
    assert first[0]["content"].startswith("You write Python, one step per reply, for a weather desk.")
    assert f"GET {weather_api}/temp" in first[0]["content"] and "cut to 500 characters" in first[0]["content"]
    assert trajectory.instruction == first[0]["content"]
    assert first[1]["content"] == "Weather question: How warm is it in Oslo?"
    assert second[-1]["content"].startswith("Step 1 printed:\n{'city': 'Oslo', 'celsius': 21}") and "Now step 2." in second[-1]["content"]


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("Weather question: {question}", "uses ['question'], expected ['query']"),
        ("Weather question: {query", "malformed"),
        ("prompts/missing-task.txt", "no file prompts/missing-task.txt either"),
    ],
)
async def test_a_bad_prompt_template_is_one_line_before_any_request(weather_api: str, template: str, says: str) -> None:
    async with OpenAIStub(weather_policy) as stub:
        with pytest.raises(codetool.ConfigError) as info:
            await codetool.solve_async(
                "How warm is it in Oslo?", tools="weather-plugin-test", tool_options={"base_url": weather_api},
                overrides={**_settings(stub), "prompts": {"task": template}},
            )  # fmt: skip
    assert "prompts.task" in str(info.value) and says in str(info.value) and "\n" not in str(info.value)
    assert stub.requests == []


@pytest.mark.parametrize("bad", [7.5, -0.1, float("nan")])
def test_a_user_scorer_cannot_hand_back_a_score_that_is_not_a_probability(bad: float) -> None:
    with pytest.raises(codetool.RewardModelError):
        codetool.LatentScore(bad)
