"""The `python -m sandbox` command line: `run --backend restricted|process|docker FILE [...]` and `build-image`.

`run` runs FILE as one cell and prints one JSON object (the `ExecutionResult`). Exit
status: 0 when the code ran, 1 when it failed, 2 on a usage error. Every HTTP call is
refused here; `python -m agent sandbox run --allow PREFIX` (the layer that owns both the
sandbox and the tool gateway) lets calls under those prefixes through the gateway.
`build-image` builds the docker backend's image (see `sandbox.image`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import typer

from codetool_kernel.cli import BAD_INPUT
from codetool_kernel.errors import CodeToolError, ConfigError
from codetool_kernel.files import to_json
from codetool_kernel.logging import configure_logging
from codetool_kernel.protocol import Cell, ExecutionResult, SandboxLimits, ToolHandler
from sandbox.base import available_backends, create_sandbox
from sandbox.image import ImageRecipe, build_image

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Run code in a CodeTool sandbox.")
USAGE_ERROR = BAD_INPUT


@app.callback()
def _main() -> None:
    """Run code in a CodeTool sandbox."""


ToolOpener = Callable[[list[str]], contextlib.AbstractAsyncContextManager[ToolHandler | None]]
"""Opens the tool handler that lets sandboxed code call the URL prefixes given (the tool gateway, a layer up)."""


@contextlib.asynccontextmanager
async def _no_tools(allow: list[str]) -> AsyncIterator[ToolHandler | None]:
    yield None


_opener: list[ToolOpener] = [_no_tools]


def use_tool_opener(opener: ToolOpener) -> typer.Typer:
    """This command line with `--allow` served by `opener` (the agent layer plugs the tool gateway in)."""
    _opener[0] = opener
    return app


async def _run(backend: str, code: str, limits: SandboxLimits, allow: list[str]) -> ExecutionResult:
    async with _opener[0](allow) as tools, create_sandbox(backend, limits, pool_size=1) as sandbox:
        return await sandbox.execute(Cell(code=code), tools)


@app.command()
def run(
    file: Path = typer.Argument(..., help="Python file to run as one cell"),
    backend: str = typer.Option("restricted", help="sandbox backend"),
    timeout: float = typer.Option(30.0, help="wall-clock limit in seconds"),
    memory_mb: int = typer.Option(1024, help="memory limit in MB"),
    allow: list[str] = typer.Option([], help="URL prefix the code may call through the tool gateway (repeatable)"),
) -> None:
    """Run FILE in the sandbox and print the result as one JSON object."""
    configure_logging()  # warnings only, on stderr: stdout carries the JSON alone
    if backend not in available_backends():
        raise typer.BadParameter(f"unknown backend {backend!r}; choose one of {', '.join(available_backends())}", param_hint="--backend")
    if allow and _opener[0] is _no_tools:
        raise typer.BadParameter("calls through the tool gateway need `python -m agent sandbox run`", param_hint="--allow")
    try:
        code = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from None
    try:
        limits = SandboxLimits(timeout_s=timeout, cpu_s=max(1, int(timeout) + 1), memory_mb=memory_mb)
    except ValueError as exc:
        raise typer.BadParameter(" ".join(str(exc).split()), param_hint="--timeout/--memory-mb") from None
    try:
        result = asyncio.run(_run(backend, code, limits, allow))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(USAGE_ERROR) from None
    except CodeToolError as exc:
        result = ExecutionResult(ok=False, error=f"{type(exc).__name__}: {exc}", error_type=type(exc).__name__, backend=backend)
    typer.echo(to_json(result.model_dump(mode="json")))
    raise typer.Exit(0 if result.ok else 1)


@app.command("build-image")
def build_image_command(
    offline: bool = typer.Option(None, "--offline/--registry", help="force the offline (debootstrap) or the registry build"),
    force: bool = typer.Option(False, help="rebuild even if the image for this runner exists"),
    cache_dir: Path = typer.Option(None, help="where the offline root filesystem is cached [~/.cache/codetool]"),
) -> None:
    """Build the docker backend's image for the current runner (nothing to do when it exists)."""
    configure_logging(level="INFO")
    recipe = ImageRecipe() if cache_dir is None else ImageRecipe(cache_dir=cache_dir)
    try:
        outcome = build_image(recipe, offline=offline, force=force)
    except CodeToolError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    typer.echo(f"{outcome.tag} {'built FROM ' + outcome.base if outcome.built else 'already up to date'}")
