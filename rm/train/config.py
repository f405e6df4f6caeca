"""Settings of one `rm train` run, built once at the entry point and passed down frozen."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from codetool_kernel.validation import FrozenModel
from rm.prompt import DEFAULT_ANSWER_WORDS, check_answer_words


class TrainConfig(FrozenModel):
    """Fine-tuning a generative PRM on `rm label`'s JSON lines (defaults: the paper's full fine-tuning)."""

    base: str = Field(min_length=1, description="base model: a local checkpoint folder")
    data: Path = Field(description="the `prm_train.jsonl` written by `rm label`")
    out: Path = Field(description="where the trained PRM goes; checkpoints in `out/checkpoints`")
    lora: bool = False
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    epochs: float = Field(2.0, gt=0)
    max_steps: int = Field(-1, description="optimizer steps; > 0 overrides epochs")
    learning_rate: float = Field(1e-6, gt=0)
    batch_size: int = Field(1, ge=1, description="examples per device and forward pass")
    grad_accum: int = Field(8, ge=1, description="forward passes per optimizer step")
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="share of queries held out for evaluation")
    eval_steps: int | None = Field(None, ge=1, description="evaluate every this many steps (always at start and end)")
    save_steps: int = Field(500, ge=1)
    save_total_limit: int = Field(2, ge=1)
    logging_steps: int = Field(10, ge=1)
    cutoff_len: int = Field(8192, ge=8, description="longer prompts are dropped, never cut")
    seed: int = 0
    bf16: bool | None = Field(None, description="None: on when a GPU with bf16 is there")
    gradient_checkpointing: bool | None = Field(None, description="None: on when a GPU is there")
    resume: bool = Field(True, description="continue from the last checkpoint in out/checkpoints")
    answer_words: tuple[str, str] = DEFAULT_ANSWER_WORDS

    @field_validator("answer_words")
    @classmethod
    def _two_words(cls, words: tuple[str, str]) -> tuple[str, str]:
        return check_answer_words(words)

    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoints"
