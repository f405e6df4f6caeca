"""The StableToolBench tool set: queries, API docs and the virtual API server behind them.

Every API is reached the same way, `POST <virtual URL>` with `{category, tool_name, api_name,
tool_input, strip, toolbench_key}`. The prompt always shows one stable URL
(`http://localhost:8080/virtual` by default) and the gateway routes it to the embedded server
(or to `virtual_url`, e.g. StableToolBench's own server). `toolbench_key` is a mask in the
prompt; the gateway puts the real key (option or env `TOOLBENCH_KEY`) into that field, and only
there, on the way out.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import Field

from codetool_kernel.errors import ConfigError, DataError, ToolGatewayError
from codetool_kernel.files import read_json
from codetool_kernel.text import truncate
from codetool_kernel.validation import FrozenModel
from tools.registry import parse_options, register_provider
from tools.response_cache import standardize
from tools.retrieval import ApiRetriever
from tools.secrets import SecretSlot
from tools.simulators import LlmSimulator, Simulator, TemplateSimulator
from tools.stabletoolbench_queries import StableToolBenchQueries, read_queries
from tools.toolset import ApiParameter, ApiSpec, Query, Route, ToolProvider, ToolSet
from tools.virtual_server import VirtualApiServer

log = structlog.get_logger(__name__)

TOOLBENCH_KEY_MASK = "MASKED_TOOLBENCH_KEY"
SECRET_SLOTS = (SecretSlot(mask=TOOLBENCH_KEY_MASK, place="body_field", name="toolbench_key"),)
"""The key goes in the `toolbench_key` field of the POST body, and nowhere else."""
DEFAULT_PROMPT_URL = "http://localhost:8080/virtual"


class StableToolBenchOptions(FrozenModel):
    """Options of the `stabletoolbench` provider (`create_provider("stabletoolbench", **options)`)."""

    prompt_url: str = DEFAULT_PROMPT_URL
    """The virtual server URL shown in prompts; the gateway routes it to the real server."""
    virtual_url: str | None = None
    """An external virtual server's `/virtual` URL; None starts the embedded one on loopback."""
    cache_dir: str | None = None
    """Response cache of the embedded server (official layout)."""
    record: bool = False
    """Write simulated answers into `cache_dir`."""
    simulator: Literal["template", "llm"] = "template"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str = "EMPTY"
    toolbench_key: str | None = None
    """Real key sent to the virtual server; default: env `TOOLBENCH_KEY`."""
    tools_dir: str | None = None
    """A StableToolBench `tools` folder (`<dir>/<Category>/<tool>.json`) for free-form retrieval."""
    api_pool: tuple[str, ...] = ()
    """Query files (or folders of them) whose APIs form the retrieval pool when no `tools_dir`."""
    top_k: int = Field(20, gt=0)


@register_provider("stabletoolbench")
class StableToolBenchProvider(ToolProvider):
    """Tool sets for StableToolBench queries, served by a virtual API server."""

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(StableToolBenchOptions, "stabletoolbench", options)
        if self.options.simulator == "llm" and not (self.options.llm_base_url and self.options.llm_model):
            raise ConfigError("stabletoolbench provider: simulator='llm' needs llm_base_url and llm_model")
        self._key = self.options.toolbench_key or os.environ.get("TOOLBENCH_KEY") or ""
        self._pool: dict[tuple[str, str], ApiSpec] = {}
        self._retriever: ApiRetriever | None = None
        self._simulator: Simulator | None = None
        self._server: VirtualApiServer | None = None

    @property
    def upstream_url(self) -> str:
        """Where calls to the prompt URL really go."""
        if self.options.virtual_url:
            return self.options.virtual_url
        if self._server is None:
            raise ToolGatewayError("stabletoolbench provider is not started: use `async with create_provider(...)`")
        return self._server.url

    async def start(self) -> None:
        if self.options.tools_dir:
            self._add_to_pool(await asyncio.to_thread(load_tools_dir, self.options.tools_dir, self.options.prompt_url))
        for path in self.options.api_pool:
            for query in await asyncio.to_thread(read_queries, Path(path)):
                self._add_to_pool(self._specs(query))
        if self.options.virtual_url is None and self._server is None:
            self._simulator = self._build_simulator()
            self._server = VirtualApiServer(
                cache_dir=self.options.cache_dir, simulator=self._simulator, record=self.options.record
            )
            self._server.register_apis(self._pool.values())
            await self._server.start()

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.aclose()
            self._server = None
        if isinstance(self._simulator, LlmSimulator):
            await self._simulator.aclose()

    def load_queries(self, path: str, ids: Sequence[str] | None = None, *, group: str | None = None) -> list[Query]:
        """Queries of a group file, or of `<path>/<group>.json` when `path` is a folder; their APIs
        join the retrieval pool (when no `tools_dir` is given)."""
        file = Path(path)
        if file.is_dir():
            if not group:
                raise ConfigError(f"{path} is a folder: name the group too (e.g. group='G1_instruction')")
            file = file / f"{group}.json"
        queries = StableToolBenchQueries().load(file, ids)
        if not self.options.tools_dir:
            for query in queries:
                self._add_to_pool(self._specs(query))
        return queries

    def toolset_for(self, query: Query) -> ToolSet:
        apis = self._specs(query) if query.api_list else self._retrieve(query.text)
        if self._server is not None:
            self._server.register_apis(apis)
        return ToolSet(
            name="stabletoolbench",
            apis=tuple(apis),
            routes=(Route(prefix=self.options.prompt_url, upstream=self.upstream_url, secret_slots=SECRET_SLOTS),),
            secrets={TOOLBENCH_KEY_MASK: self._key} if self._key else {},
            docs=render_docs(apis),
            usage_notes=usage_notes(self.options.prompt_url),
        )

    def _specs(self, query: Query) -> list[ApiSpec]:
        return [
            api_spec(entry, self.options.prompt_url, where=f"query {query.query_id}") for entry in query.api_list or ()
        ]

    def _retrieve(self, text: str) -> list[ApiSpec]:
        if not self._pool:
            raise ConfigError(
                "no API pool for a free-form query: pass tools_dir=... or api_pool=[...], or load a query file first"
            )
        if self._retriever is None:
            self._retriever = ApiRetriever(list(self._pool.values()))
        return self._retriever.search(text, self.options.top_k)

    def _add_to_pool(self, apis: Iterable[ApiSpec]) -> None:
        for api in apis:
            key = (standardize(api.extra["tool_name"]), standardize(api.extra["api_name"]))
            if key not in self._pool:
                self._pool[key] = api
                self._retriever = None

    def _build_simulator(self) -> Simulator:
        if self.options.simulator == "llm":
            assert self.options.llm_base_url and self.options.llm_model
            return LlmSimulator(
                base_url=self.options.llm_base_url, model=self.options.llm_model, api_key=self.options.llm_api_key
            )
        return TemplateSimulator()


def api_spec(
    entry: Any, prompt_url: str, *, where: str, category: str | None = None, tool: str | None = None
) -> ApiSpec:
    """An `ApiSpec` from a query's `api_list` entry (or a `tools` folder entry with its category/tool)."""
    if not isinstance(entry, Mapping):
        raise DataError(f"{where}: an API entry is {type(entry).__name__}, not an object")
    category = category or entry.get("category_name")
    tool = tool or entry.get("tool_name")
    name = entry.get("api_name") or entry.get("name")
    if not all(isinstance(v, str) and v for v in (category, tool, name)):
        raise DataError(f"{where}: an API entry lacks category_name/tool_name/api_name")
    parameters = [
        _parameter(raw, required, where)
        for required, key in ((True, "required_parameters"), (False, "optional_parameters"))
        for raw in entry.get(key) or ()
    ]
    return ApiSpec(
        name=f"{tool}/{name}",
        method="POST",
        url=prompt_url,
        description=str(entry.get("api_description") or entry.get("description") or ""),
        parameters=tuple(parameters),
        extra={
            "category": category,
            "tool_name": tool,
            "api_name": name,
            "http_method": str(entry.get("method") or "GET"),
            "template_response": entry.get("template_response"),
            "search_terms": f"{category} {tool} {entry.get('tool_description') or ''}",
        },
        body_match={"tool_name": tool, "api_name": name},
    )


def _parameter(raw: Any, required: bool, where: str) -> ApiParameter:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        raise DataError(f"{where}: a parameter entry has no name")
    return ApiParameter(
        name=raw["name"],
        type=str(raw.get("type") or "string").lower(),
        description=str(raw.get("description") or ""),
        required=required,
        default=raw.get("default"),
        location="body",
    )


def render_docs(apis: Sequence[ApiSpec]) -> str:
    """The API documentation block for the instruction: one entry per API with its POST body."""
    blocks = []
    for number, api in enumerate(apis, 1):
        tool_input = {p.name: _describe_parameter(p) for p in api.parameters}
        body = {
            "category": api.extra["category"],
            "tool_name": api.extra["tool_name"],
            "api_name": api.extra["api_name"],
            "tool_input": tool_input,
            "strip": "",
            "toolbench_key": TOOLBENCH_KEY_MASK,
        }
        blocks.append(
            f"API {number}: {api.name}\n"
            f"  What it does: {truncate(' '.join(api.description.split()), 400) or '(no description)'}\n"
            f"  URL: {api.url}\n"
            f"  Method: POST\n"
            f"  JSON body: {json.dumps(body, ensure_ascii=False, default=str)}"
        )
    return "\n\n".join(blocks)


def _describe_parameter(parameter: ApiParameter) -> str:
    text = f"{parameter.type}, {'required' if parameter.required else 'optional'}"
    description = truncate(" ".join(parameter.description.split()), 200)
    if description:
        text += f". {description}"
    if parameter.default not in (None, ""):
        text += f" (default: {json.dumps(parameter.default, ensure_ascii=False, default=str)})"
    return text


def usage_notes(prompt_url: str) -> str:
    """How generated code calls these APIs."""
    return (
        f'Call every API with `requests.post("{prompt_url}", json=body)`, where `body` is the JSON body shown '
        "for that API with `tool_input` holding your parameter values (leave out optional parameters you do not "
        "need). Keep category, tool_name, api_name, strip and toolbench_key exactly as shown. The reply is JSON "
        '`{"error": "...", "response": ...}`: read `response.json()["response"]` and check `error`.'
    )


def load_tools_dir(tools_dir: str | Path, prompt_url: str = DEFAULT_PROMPT_URL) -> list[ApiSpec]:
    """Every API of a StableToolBench `tools` folder (`<dir>/<Category>/<tool>.json`), in file order."""
    root = Path(tools_dir)
    if not root.is_dir():
        raise ConfigError(f"tools_dir {tools_dir} is not a folder")
    apis: list[ApiSpec] = []
    for file in sorted(root.glob("*/*.json")):
        try:
            tool = read_json(file)
            entries = tool["api_list"]
            tool_name = tool.get("tool_name") or file.stem
            extra = {"tool_description": tool.get("tool_description") or ""}
            apis += [
                api_spec({**extra, **entry}, prompt_url, where=str(file), category=file.parent.name, tool=tool_name)
                for entry in entries
            ]
        except (DataError, KeyError, TypeError, AttributeError) as exc:
            log.warning("skipping unreadable tool file", path=str(file), reason=str(exc)[:200])
    return apis
