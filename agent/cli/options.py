"""Command-line options shared by `solve` and `run`, and how they become an `AgentConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from agent.config import AgentConfig, load_config
from agent.search import check_search
from codetool_kernel.paths import check_input

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file (see README).")]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint (env OPENAI_BASE_URL); without one the policy runs in this process.")]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m",
        help="Policy model (env CODETOOL_MODEL): NAME at the endpoint, or in this process hf:NAME_OR_PATH / vllm:NAME.",
    ),
]  # fmt: skip
NOpt = Annotated[int | None, typer.Option("--n", help="Candidates sampled per step (paper: 2).")]
DepthOpt = Annotated[int | None, typer.Option("--max-depth", help="Most steps per query (paper: 5).")]
StrategyOpt = Annotated[
    str | None, typer.Option("--strategy", help="Search strategy: greedy (default), beam, tree, or a plug-in's.")
]
ModeOpt = Annotated[
    str | None,
    typer.Option("--mode", help="Selection rule: codetool, no-latent, no-spot, or a plug-in's (beam: deprecated, --strategy beam)."),
]
BeamOpt = Annotated[int | None, typer.Option("--beam-width", help="Partial trajectories kept by --strategy beam.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed of the selection policy's randomness.")]
SandboxOpt = Annotated[str | None, typer.Option("--sandbox", help="Sandbox backend: restricted, process, docker.")]
TimeoutOpt = Annotated[float | None, typer.Option("--timeout", help="Seconds one execution may take.")]
RmUrlOpt = Annotated[str | None, typer.Option("--rm-url", help="Process reward model server (python -m rm serve).")]
RmModelOpt = Annotated[
    str | None, typer.Option("--rm-model", help="PRM run in this process (local path or hub name), instead of --rm-url.")
]
RmProtocolOpt = Annotated[
    str | None, typer.Option("--rm-protocol", help="PRM contract: score (ours), generate (the reference's), auto.")
]
ToolsetOpt = Annotated[
    str | None,
    typer.Option("--toolset", "-t", help="Benchmark tool set: tmdb or stabletoolbench (default tmdb, none with --openapi/--mcp/--tools)."),
]
OpenApiOpt = Annotated[
    list[str] | None, typer.Option("--openapi", help="An OpenAPI 3 spec (file or URL) whose endpoints become tools; repeatable.")
]
McpOpt = Annotated[
    list[str] | None,
    typer.Option("--mcp", help="An MCP server whose tools the code may call: a stdio command line or an http(s) URL; repeatable."),
]
FunctionToolsOpt = Annotated[
    list[str] | None,
    typer.Option("--tools", help="Python tool functions: package.module[:attribute] (see tools.function_tool); repeatable."),
]
SpecOpt = Annotated[
    Path | None, typer.Option("--spec", help="TMDB spec (tmdb_spec.json[.gz]); default: the RestBench spec shipped with CodeTool.")
]
CacheOpt = Annotated[
    Path | None,
    typer.Option("--cache", help="Response cache directory: StableToolBench's, or where real TMDB answers are recorded/replayed."),
]
VirtualUrlOpt = Annotated[str | None, typer.Option("--virtual-url", help="External StableToolBench virtual server.")]
LlmTimeoutOpt = Annotated[float | None, typer.Option("--llm-timeout", help="Seconds one LLM request may take.")]
LlmRetriesOpt = Annotated[
    int | None, typer.Option("--llm-retries", help="Retries of a failed or malformed LLM answer (with backoff).")
]
LlmConcurrencyOpt = Annotated[int | None, typer.Option("--llm-concurrency", help="LLM requests in flight (per endpoint).")]
PrmTimeoutOpt = Annotated[float | None, typer.Option("--prm-timeout", help="Seconds one PRM request may take.")]
PrmRetriesOpt = Annotated[
    int | None, typer.Option("--prm-retries", help="Retries of a failed or malformed PRM answer (with backoff).")
]
PrmConcurrencyOpt = Annotated[int | None, typer.Option("--prm-concurrency", help="PRM requests in flight.")]
ToolConcurrencyOpt = Annotated[
    int | None, typer.Option("--tool-concurrency", help="Tool calls in flight through the gateway.")
]
SandboxPoolOpt = Annotated[
    int | None, typer.Option("--sandbox-pool", help="Sandbox executions at once (backend pool size).")
]
ToolsDirOpt = Annotated[Path | None, typer.Option("--tools-dir", help="StableToolBench tools folder, for free-form queries.")]


def build_config(
    config_file: Path | None,
    *,
    base_url: str | None = None,
    model: str | None = None,
    n: int | None = None,
    max_depth: int | None = None,
    strategy: str | None = None,
    mode: str | None = None,
    beam_width: int | None = None,
    seed: int | None = None,
    sandbox: str | None = None,
    timeout: float | None = None,
    rm_url: str | None = None,
    llm_timeout: float | None = None,
    llm_retries: int | None = None,
    llm_concurrency: int | None = None,
    prm_timeout: float | None = None,
    prm_retries: int | None = None,
    prm_concurrency: int | None = None,
    tool_concurrency: int | None = None,
    sandbox_pool: int | None = None,
    rm_protocol: str | None = None,
    openapi: list[str] | None = None,
    mcp: list[str] | None = None,
    function_tools: list[str] | None = None,
    rm_model: str | None = None,
) -> AgentConfig:
    """Apply the flags that were given on top of file, environment and defaults (every problem in one error)."""
    if config_file is not None:
        check_input(config_file, "--config", kind="file")
    overrides: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            overrides.setdefault(section, {})[key] = value

    put("llm", "base_url", base_url)
    put("llm", "model", model)
    put("search", "n", n)
    put("search", "max_depth", max_depth)
    put("search", "strategy", strategy)
    put("search", "mode", mode)
    put("search", "beam_width", beam_width)
    put("search", "seed", seed)
    put("sandbox", "backend", sandbox)
    put("rm", "url", rm_url)
    put("llm", "timeout_s", llm_timeout)
    put("llm", "max_retries", llm_retries)
    put("llm", "max_concurrency", llm_concurrency)
    put("rm", "timeout_s", prm_timeout)
    put("rm", "retries", prm_retries)
    put("rm", "max_connections", prm_concurrency)
    put("gateway", "concurrency", tool_concurrency)
    put("rm", "protocol", rm_protocol)
    put("tools", "openapi", openapi or None)
    put("tools", "mcp", mcp or None)
    put("tools", "functions", function_tools or None)
    put("rm", "model", rm_model)
    if timeout is not None:
        overrides.setdefault("sandbox", {})["limits"] = {"timeout_s": timeout}
    if sandbox_pool is not None:
        overrides.setdefault("sandbox", {})["options"] = {"pool_size": sandbox_pool}
    config = load_config(config_file, overrides)
    check_search(config.search)
    return config
