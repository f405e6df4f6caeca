"""Command line of the tools package: `python -m tools serve-virtual --cache DIR --port P`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from codetool_kernel.errors import CodeToolError
from codetool_kernel.logging import configure_logging
from tools.simulators import LlmSimulator, Simulator, TemplateSimulator
from tools.stabletoolbench import DEFAULT_PROMPT_URL, api_spec
from tools.stabletoolbench_queries import read_queries
from tools.virtual_server import VirtualApiServer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="CodeTool tool sets and virtual API servers.")


@app.callback()
def main() -> None:
    """CodeTool tool sets and virtual API servers."""


@app.command("serve-virtual")
def serve_virtual(
    cache: Annotated[Path | None, typer.Option(help="Response cache folder (official StableToolBench layout).")] = None,
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8080,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    queries: Annotated[
        list[Path] | None, typer.Option(help="Query files or folders whose APIs the simulator should know.")
    ] = None,
    record: Annotated[bool, typer.Option(help="Write simulated answers into the cache.")] = False,
    llm_base_url: Annotated[
        str | None, typer.Option(help="Simulate misses with this OpenAI-compatible endpoint.")
    ] = None,
    llm_model: Annotated[str | None, typer.Option(help="Model name for --llm-base-url.")] = None,
    llm_api_key: Annotated[
        str, typer.Option(envvar="CODETOOL_SIMULATOR_API_KEY", help="API key for the endpoint.")
    ] = "EMPTY",
    log_level: Annotated[str, typer.Option(help="Log level.")] = "WARNING",
) -> None:
    """Serve StableToolBench's `POST /virtual` from a response cache and a simulator."""
    configure_logging(level=log_level)
    simulator: Simulator = TemplateSimulator()
    if llm_base_url or llm_model:
        if not (llm_base_url and llm_model):
            raise typer.BadParameter("--llm-base-url and --llm-model go together")
        simulator = LlmSimulator(base_url=llm_base_url, model=llm_model, api_key=llm_api_key)
    try:
        apis = [
            api_spec(entry, DEFAULT_PROMPT_URL, where=f"{path}: query {query.query_id}")
            for path in queries or ()
            for query in read_queries(path)
            for entry in query.api_list or ()
        ]
        server = VirtualApiServer(cache_dir=cache, simulator=simulator, record=record, host=host, port=port)
        server.register_apis(apis)
        asyncio.run(_serve(server))
    except CodeToolError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None


async def _serve(server: VirtualApiServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        typer.echo(f"serving virtual APIs on {server.url} ({server.api_count} APIs known)")
        await stop.wait()
    if isinstance(server.simulator, LlmSimulator):
        await server.simulator.aclose()

