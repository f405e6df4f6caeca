"""`python -m rm serve --model PATH --port P`: run the PRM scoring server until SIGINT/SIGTERM.

Beside it, the process-supervision pipeline: `label` (scores, sibling pairs, SFT export of the trees
`python -m agent collect` writes) and `train` (fine-tune the PRM that `serve` loads).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer

from codetool_kernel.cli import one_error_line
from codetool_kernel.logging import configure_logging
from rm.commands import label_command, train_command
from rm.config import BatchingConfig, EndpointConfig, PrefixSharingConfig, ScorerConfig, ServerConfig
from rm.scorers import create_scorer, scorer_names
from rm.server import RewardModelServer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="CodeTool process reward model (PRM).")


@app.callback()
def _group() -> None:
    """CodeTool process reward model (PRM)."""


@app.command()
def serve(
    model: Annotated[str, typer.Option(help="PRM checkpoint path or name (served model name for --backend openai)")],
    backend: Annotated[str, typer.Option(help=f"scoring backend: {', '.join(scorer_names())}")] = "hf",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on; 0 picks a free one")] = 8081,
    device: Annotated[str, typer.Option(help="cpu, cuda or cuda:N (hf backend; bf16 on GPU)")] = "cpu",
    max_batch: Annotated[int, typer.Option(help="most candidates in one forward pass")] = 16,
    batch_window_ms: Annotated[float, typer.Option(help="how long a request waits for others to share its pass")] = 5.0,
    max_queue: Annotated[int, typer.Option(help="most candidates waiting; more are refused with 503")] = 512,
    prefix_sharing: Annotated[
        bool,
        typer.Option(
            "--prefix-sharing/--no-prefix-sharing",
            help="compute a long prompt prefix that candidates of one pass share only once (hf backend)",
        ),
    ] = True,
    prefix_min_tokens: Annotated[int, typer.Option(help="shortest shared prefix worth its own pass")] = 256,
    prefix_cache_tokens: Annotated[
        int, typer.Option(help="prefix tokens whose keys/values are kept for later requests (0: none)")
    ] = 32768,
    max_items: Annotated[int, typer.Option(help="most candidates in one /score request")] = 64,
    max_prompt_tokens: Annotated[int, typer.Option(help="longer prompts are refused with 400")] = 8192,
    answer_words: Annotated[tuple[str, str], typer.Option(help="the yes and no words")] = ("yes", "no"),
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint (openai backend)")] = None,
    api_key: Annotated[str, typer.Option(envvar="RM_API_KEY", help="key for --base-url")] = "EMPTY",
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Serve POST /score, POST /generate and GET /health."""
    configure_logging(level=log_level)
    with one_error_line():
        scorer_config = ScorerConfig(
            model=model,
            answer_words=answer_words,
            device=device,
            max_prompt_tokens=max_prompt_tokens,
            batching=BatchingConfig(max_batch=max_batch, window_ms=batch_window_ms, max_queue=max_queue),
            prefix_sharing=PrefixSharingConfig(
                enabled=prefix_sharing, min_tokens=prefix_min_tokens, cache_tokens=prefix_cache_tokens
            ),
            endpoint=EndpointConfig(base_url=base_url, api_key=api_key),
        )
        server_config = ServerConfig(host=host, port=port, max_items=min(max_items, max_queue))
        asyncio.run(_serve(backend, scorer_config, server_config))


async def _serve(backend: str, scorer_config: ScorerConfig, server_config: ServerConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with create_scorer(backend, scorer_config) as scorer:
        async with RewardModelServer(scorer, server_config, model=scorer_config.model) as server:
            # The one line on stdout: scripts and tests read the URL from it (useful with --port 0).
            print(f"rm server listening on {server.url} (backend {backend}, model {scorer_config.model})", flush=True)
            await stop.wait()
    print("rm server stopped", file=sys.stderr, flush=True)


app.command("label")(label_command)
app.command("train")(train_command)

