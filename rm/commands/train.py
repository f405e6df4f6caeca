"""`python -m rm train`: fine-tune the generative PRM on `rm label`'s export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codetool_kernel.cli import one_error_line
from codetool_kernel.errors import DataError
from codetool_kernel.files import read_json
from codetool_kernel.logging import configure_logging
from rm.export import DATASET_INFO_FILE
from rm.prompt import DEFAULT_ANSWER_WORDS
from rm.train import REPORT_FILE, TrainConfig, TrainReport, llamafactory_recipe, train_prm


def train_command(
    base: Annotated[str, typer.Option("--base", help="Base model folder (a chat model with a chat template).")],
    data: Annotated[Path, typer.Option("--data", help="prm_train.jsonl written by `rm label` (in OUT/sft/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where the trained PRM goes (for `rm serve --model`).")],
    lora: Annotated[bool, typer.Option("--lora/--full", help="LoRA (merged at the end) or full fine-tuning.")] = False,
    lora_r: Annotated[int, typer.Option(help="LoRA rank")] = 16,
    lora_alpha: Annotated[int, typer.Option(help="LoRA alpha")] = 32,
    epochs: Annotated[float, typer.Option(help="passes over the data (paper: 2)")] = 2.0,
    max_steps: Annotated[int, typer.Option(help="optimizer steps; > 0 overrides --epochs")] = -1,
    lr: Annotated[float, typer.Option("--lr", help="peak learning rate (paper, full fine-tuning: 1e-6)")] = 1e-6,
    batch_size: Annotated[int, typer.Option(help="examples per device and forward pass")] = 1,
    grad_accum: Annotated[int, typer.Option(help="forward passes per optimizer step")] = 8,
    warmup_ratio: Annotated[float, typer.Option(help="share of steps warming up before the cosine decay")] = 0.1,
    eval_fraction: Annotated[float, typer.Option(help="share of queries held out for evaluation")] = 0.1,
    eval_steps: Annotated[int | None, typer.Option(help="also evaluate every N steps")] = None,
    save_steps: Annotated[int, typer.Option(help="checkpoint every N steps (in OUT/checkpoints)")] = 500,
    logging_steps: Annotated[int, typer.Option(help="log the training loss every N steps")] = 10,
    cutoff_len: Annotated[int, typer.Option(help="drop prompts longer than this many tokens (paper: 8192)")] = 8192,
    seed: Annotated[int, typer.Option(help="seed of the split, shuffling and initialisation")] = 0,
    bf16: Annotated[bool | None, typer.Option("--bf16/--no-bf16", help="default: on when a bf16 GPU is there")] = None,
    gradient_checkpointing: Annotated[
        bool | None,
        typer.Option("--gradient-checkpointing/--no-gradient-checkpointing", help="default: on when a GPU is there"),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="continue from the last checkpoint")] = True,
    answer_words: Annotated[tuple[str, str], typer.Option(help="the yes and no words")] = DEFAULT_ANSWER_WORDS,
    llamafactory_yaml: Annotated[
        Path | None, typer.Option(help="write a LLaMA-Factory recipe of this run here instead of training")
    ] = None,
    template: Annotated[str, typer.Option(help="LLaMA-Factory template of the base model")] = "qwen",
) -> None:
    """Fine-tune a causal LM to answer yes/no on the PRM prompts (loss on the answer token only)."""
    with one_error_line():
        config = TrainConfig(
            base=base, data=data, out=out, lora=lora, lora_r=lora_r, lora_alpha=lora_alpha, epochs=epochs,
            max_steps=max_steps, learning_rate=lr, batch_size=batch_size, grad_accum=grad_accum,
            warmup_ratio=warmup_ratio, eval_fraction=eval_fraction, eval_steps=eval_steps, save_steps=save_steps,
            logging_steps=logging_steps, cutoff_len=cutoff_len, seed=seed, bf16=bf16,
            gradient_checkpointing=gradient_checkpointing, resume=resume, answer_words=answer_words,
        )  # fmt: skip
        if llamafactory_yaml is not None:
            llamafactory_yaml.parent.mkdir(parents=True, exist_ok=True)
            recipe = llamafactory_recipe(config, template=template, dataset_name=_dataset_name(data))
            llamafactory_yaml.write_text(recipe, encoding="utf-8")
            typer.echo(f"wrote {llamafactory_yaml}; run: FORCE_TORCHRUN=1 llamafactory-cli train {llamafactory_yaml}")
            return
        configure_logging(level="INFO")
        _print_report(train_prm(config), out)


def _dataset_name(data: Path) -> str:
    """The entry `rm label` wrote in the `dataset_info.json` beside `data` (its --dataset-name)."""
    info = data.parent / DATASET_INFO_FILE
    entries = read_json(info) if info.exists() else {}
    if not isinstance(entries, dict) or len(entries) != 1:
        raise DataError(f"{info}: expected the one dataset entry `rm label` writes beside {data.name}")
    return next(iter(entries))


def _print_report(report: TrainReport, out: Path) -> None:
    if report.resumed_from:
        typer.echo(f"resumed from {report.resumed_from}")
    typer.echo(
        f"trained {report.global_step} steps on {report.train_examples} examples ({report.eval_examples} held out)"
    )
    for reason, count in report.dropped.items():
        typer.echo(f"dropped {count} examples: {reason}")
    if report.train_loss:
        typer.echo(f"training loss {report.train_loss[0][1]:.4f} -> {report.train_loss[-1][1]:.4f}")
    for name, metrics in (("base model", report.base), ("trained", report.trained)):
        if metrics:
            typer.echo(
                f"held-out {name}: loss {metrics['loss']:.4f}, pairwise accuracy {metrics['pairwise_accuracy']:.3f}"
                f" over {metrics['pairs']:.0f} pairs, label accuracy {metrics['label_accuracy']:.3f}"
            )
    typer.echo(f"PRM saved to {out} (report: {out / REPORT_FILE}); serve it: python -m rm serve --model {out}")
