"""Fine-tuning the generative PRM with transformers' `Trainer` (full or LoRA), loss on the answer token only.

The output folder holds a plain causal LM and its tokenizer (LoRA weights merged), so
`python -m rm serve --model OUT` loads it like any checkpoint. Launched with `torchrun`, the same
code trains data-parallel; LLaMA-Factory is the documented route for larger multi-GPU runs.
"""

from __future__ import annotations

import inspect
import json
import math
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from codetool_kernel.errors import DataError, RewardModelError
from codetool_kernel.files import write_json_atomic
from codetool_kernel.text import one_line
from rm.export import read_train_records
from rm.scorers.base import missing_extra
from rm.scorers.chat import answer_token_ids, load_chat_tokenizer
from rm.scores import two_way_softmax
from rm.train.config import TrainConfig
from rm.train.data import Encoded, LeftPaddingCollator, check_answers, encode, split_by_query
from rm.train.metrics import pair_metrics

log = structlog.get_logger(__name__)

REPORT_FILE = "training_report.json"


@dataclass
class TrainReport:
    """What a run did: data sizes, held-out metrics of the base and the trained model, the loss curve."""

    train_examples: int
    eval_examples: int
    dropped: dict[str, int]
    resumed_from: str | None = None
    global_step: int = 0
    base: dict[str, float] = field(default_factory=dict)
    """Held-out metrics of the base model: `loss`, `pairwise_accuracy`, `label_accuracy`, `pairs`."""
    trained: dict[str, float] = field(default_factory=dict)
    """The same metrics after training."""
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    """(step, loss) as logged every `logging_steps`."""


def train_prm(config: TrainConfig) -> TrainReport:
    """Train, evaluate and save the PRM; blocking (run it in its own process or thread)."""
    try:
        import torch
        from transformers.trainer_utils import get_last_checkpoint
    except ImportError as exc:
        raise missing_extra("train", exc) from None

    records = read_train_records(config.data)
    check_answers(records, config.answer_words)
    tokenizer = load_chat_tokenizer(config.base, extra="train")
    answer_ids = answer_token_ids(tokenizer, config.answer_words)
    train_records, eval_records = split_by_query(records, config.eval_fraction, config.seed)
    dropped: Counter[str] = Counter()
    train_set = encode(train_records, tokenizer, answer_ids, config.cutoff_len, dropped)
    eval_set = encode(eval_records, tokenizer, answer_ids, config.cutoff_len, dropped)
    if not train_set:
        raise DataError(f"{config.data}: no training example is left (dropped: {dict(dropped) or 'none'})")

    gpu = torch.cuda.is_available()
    bf16 = config.bf16 if config.bf16 is not None else gpu and torch.cuda.is_bf16_supported()
    checkpointing = config.gradient_checkpointing if config.gradient_checkpointing is not None else gpu
    model, forward_options = _load_model(config, checkpointing)
    trainer = _prm_trainer_class()(
        model=model,
        args=_training_arguments(config, len(train_set), has_eval=bool(eval_set), bf16=bf16, gpu=gpu),
        data_collator=LeftPaddingCollator(tokenizer.pad_token_id),
        train_dataset=train_set,
        eval_dataset=eval_set or None,
        processing_class=tokenizer,
        compute_metrics=_metrics_for(eval_set),
        preprocess_logits_for_metrics=lambda logits, labels: logits[:, -1, list(answer_ids)].float(),
        forward_options=forward_options,
    )

    resume = None
    if config.resume and config.checkpoint_dir.is_dir():
        resume = get_last_checkpoint(str(config.checkpoint_dir))
    report = TrainReport(len(train_set), len(eval_set), dict(dropped), resumed_from=resume)
    if eval_set:
        report.base = _metrics(trainer.evaluate())
    log.info("training the PRM", train=len(train_set), eval=len(eval_set), resume=resume, bf16=bf16, lora=config.lora)
    trainer.train(resume_from_checkpoint=resume)
    if eval_set:
        report.trained = _metrics(trainer.evaluate())
    report.global_step = trainer.state.global_step
    report.train_loss = [(entry["step"], entry["loss"]) for entry in trainer.state.log_history if "loss" in entry]
    if trainer.is_world_process_zero():
        _save(trainer.model, tokenizer, config)
        write_json_atomic(config.out / REPORT_FILE, {**asdict(report), "config": json.loads(config.model_dump_json())})
    return report


def _load_model(config: TrainConfig, checkpointing: bool) -> tuple[Any, dict[str, Any]]:
    """The model to train (LoRA-wrapped if asked) and the forward options that skip unread logits."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(config.base, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise RewardModelError(f"cannot load the base model {config.base}: {one_line(exc)}") from None
    # Only the last position's logits are read; models that can skip the others save a vocab-sized tensor per token.
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.lora:
        model = _with_lora(model, config)
    return model, last_only


def _training_arguments(config: TrainConfig, examples: int, *, has_eval: bool, bf16: bool, gpu: bool) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(config.checkpoint_dir),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        lr_scheduler_type="cosine",
        warmup_steps=_warmup_steps(config, examples, int(os.environ.get("WORLD_SIZE", "1"))),
        logging_steps=config.logging_steps,
        eval_strategy="steps" if config.eval_steps and has_eval else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        bf16=bf16,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_pin_memory=gpu,
        disable_tqdm=True,
    )


def _warmup_steps(config: TrainConfig, examples: int, world_size: int) -> int:
    if config.max_steps > 0:
        total = config.max_steps
    else:
        batches = math.ceil(examples / (config.batch_size * world_size))
        total = math.ceil(math.ceil(batches / config.grad_accum) * config.epochs)
    return int(config.warmup_ratio * total)


def _with_lora(model: Any, config: TrainConfig) -> Any:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise missing_extra("train", exc) from None
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules="all-linear",
    )
    return get_peft_model(model, lora)


def _save(model: Any, tokenizer: Any, config: TrainConfig) -> None:
    if config.lora:
        model = model.merge_and_unload()
    model.config.use_cache = True
    model.save_pretrained(str(config.out))
    tokenizer.save_pretrained(str(config.out))


def _metrics(raw: dict[str, float]) -> dict[str, float]:
    timings = ("_runtime", "_per_second", "_preparation_time")
    return {key.removeprefix("eval_"): value for key, value in raw.items() if not key.endswith(timings)}


def _metrics_for(eval_set: list[Encoded]) -> Any:
    def compute(prediction: Any) -> dict[str, float]:
        scores = [two_way_softmax(float(yes), float(no)) for yes, no in prediction.predictions[: len(eval_set)]]
        return pair_metrics(scores, [item.label for item in eval_set], [item.pair for item in eval_set])

    return compute


def _prm_trainer_class() -> type:
    """`Trainer` with the loss read at the last prompt position: cross-entropy of the answer token."""
    import torch.nn.functional as functional
    from transformers import Trainer

    class PrmTrainer(Trainer):
        def __init__(self, *args: Any, forward_options: dict[str, Any], **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.forward_options = forward_options
            # The loss below is a mean over the batch: let Trainer divide it by the accumulation steps.
            self.model_accepts_loss_kwargs = False

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            features = {key: value for key, value in inputs.items() if key != "labels"}
            outputs = model(**features, use_cache=False, **self.forward_options)
            loss = functional.cross_entropy(outputs.logits[:, -1, :].float(), inputs["labels"])
            return (loss, outputs) if return_outputs else loss

    return PrmTrainer
