"""`python -m rm label`: scores, sibling pairs and SFT data from collected trees."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from codetool_kernel.cli import one_error_line
from rm.export import DATASET_INFO_FILE, DEFAULT_DATASET_NAME, SHAREGPT_FILE, TRAIN_FILE
from rm.labelling import STATS_FILE, LabelStats, NothingRead, label_trees
from rm.labels import CodelessLeafRule, LabelConfig, TieBreak
from rm.tree import PAIR_DIR, SCORED_DIR, SFT_DIR

_CODELESS_HELP = "a leaf without code succeeds if it is [All Finished] (finished) or always (succeeded: the reference)"
_TIE_HELP = "on equal execution, hard and soft: higher latent is yes (latent) or both are no (both-no: the reference)"


def label_command(
    in_dir: Annotated[Path, typer.Option("--in", help="Folder written by `agent collect` (or its dfs_data/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: path_scored/, pair_path/, sft/.")],
    alpha: Annotated[float, typer.Option(help="latent = alpha^(1 - soft) * beta^(tau / L)")] = 0.9,
    beta: Annotated[float, typer.Option(help="see --alpha")] = 0.95,
    horizon: Annotated[float, typer.Option("--L", help="L, the step count that scales tau")] = 20.0,
    codeless_leaf: Annotated[CodelessLeafRule, typer.Option(help=_CODELESS_HELP)] = "finished",
    tie_break: Annotated[TieBreak, typer.Option(help=_TIE_HELP)] = "latent",
    output_chars: Annotated[int, typer.Option(help="characters of an earlier step's output in the PRM prompt")] = 2000,
    dataset_name: Annotated[str, typer.Option(help="name of the dataset_info.json entry")] = DEFAULT_DATASET_NAME,
) -> None:
    """Score every node, label differing sibling pairs, and export PRM training data.

    Reads trees written by `agent collect` and by the reference release (`dfs_data`); exits 2 when none could be read.
    """
    with one_error_line():
        config = LabelConfig(
            alpha=alpha,
            beta=beta,
            horizon=horizon,
            codeless_leaf=codeless_leaf,
            tie_break=tie_break,
        )
        try:
            stats = label_trees(in_dir, out, config, output_chars=output_chars, dataset_name=dataset_name)
        except NothingRead as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        _print_stats(stats, out)


def _print_stats(stats: LabelStats, out: Path) -> None:
    table = Table(title="rm label", show_header=False)
    table.add_row("trees", f"{stats.files} read, {len(stats.skipped)} skipped")
    for name, reason in stats.skipped.items():
        table.add_row(f"  skipped {name}", reason)
    table.add_row("nodes", f"{stats.nodes} ({stats.leaves} leaves, {stats.leaves_succeeded} succeeded)")
    table.add_row("sibling groups", str(stats.sibling_groups))
    reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(stats.pair_reasons.items())) or "none"
    table.add_row("pairs", f"{stats.pairs} (decided by: {reasons})")
    table.add_row("examples", f"{stats.examples}: yes {stats.labels['yes']}, no {stats.labels['no']}")
    for reason, count in sorted(stats.dropped.items()):
        table.add_row("  dropped", f"{count}: {reason}")
    Console().print(table)
    sft = out / SFT_DIR
    typer.echo(
        f"wrote {out / SCORED_DIR}/, {out / PAIR_DIR}/, {sft / SHAREGPT_FILE} with {sft / DATASET_INFO_FILE}, "
        f"{sft / TRAIN_FILE}, {out / STATS_FILE}"
    )
