"""The same run through LLaMA-Factory, for multi-GPU training: a ready `llamafactory-cli train` YAML.

`rm label` writes the sharegpt file and its `dataset_info.json` beside `prm_train.jsonl`, so the
recipe points `dataset_dir` at that folder. LLaMA-Factory applies the base model's chat template
(`template`) and trains on the answer turn; the result loads with `python -m rm serve --model`.
"""

from __future__ import annotations

import yaml

from rm.export import DEFAULT_DATASET_NAME
from rm.train.config import TrainConfig

_HEADER = """\
# LLaMA-Factory recipe for the CodeTool PRM, written by `python -m rm train --llamafactory-yaml`.
# Run on N GPUs:  FORCE_TORCHRUN=1 NPROC_PER_NODE=N llamafactory-cli train THIS_FILE
# Check `template` matches the base model (qwen, llama3, ...); for 7B+ full fine-tuning add
# `deepspeed: examples/deepspeed/ds_z3_config.json` (a file of the LLaMA-Factory checkout).
"""


def llamafactory_recipe(
    config: TrainConfig, *, template: str = "qwen", dataset_name: str = DEFAULT_DATASET_NAME
) -> str:
    """YAML text of a LLaMA-Factory SFT run with this run's model, data and hyper-parameters."""
    recipe = {
        "model_name_or_path": config.base,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora" if config.lora else "full",
        **({"lora_rank": config.lora_r, "lora_alpha": config.lora_alpha, "lora_dropout": config.lora_dropout,
            "lora_target": "all"} if config.lora else {}),
        "dataset": dataset_name,
        "dataset_dir": str(config.data.resolve().parent),
        "template": template,
        "cutoff_len": config.cutoff_len,
        "val_size": config.eval_fraction,
        "output_dir": str(config.out),
        "logging_steps": config.logging_steps,
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.epochs,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": config.warmup_ratio,
        "bf16": True,
        "seed": config.seed,
        "report_to": "none",
    }  # fmt: skip
    if config.max_steps > 0:
        recipe["max_steps"] = config.max_steps
    return _HEADER + yaml.safe_dump(recipe, sort_keys=False)
