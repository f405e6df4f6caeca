"""`rm train` on a tiny model and a small learnable data set; the result served by `rm serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from codetool_kernel.errors import DataError
from rm import RewardModelClient, ScorerConfig, create_scorer
from rm.export import DATASET_INFO_FILE, read_train_records
from rm.train import REPORT_FILE, TrainConfig, pair_metrics, train_prm
from rm.train.data import split_by_query
from tests.rm.helpers import rm_server_process
from tests.rm_data.synthetic import tokenizer_corpus, write_synthetic
from tests.support.tiny_lm import build_tiny_lm

REPO = Path(__file__).resolve().parents[2]
EVAL_FRACTION = 0.25


@pytest.fixture(scope="module")
def prm_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random chat model whose tokenizer knows the synthetic prompts' words."""
    return build_tiny_lm(tmp_path_factory.mktemp("prm_lm"), vocab_size=800, extra_corpus=tokenizer_corpus())


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("sft"), count=120)


def run_rm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rm", *args], cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip


@pytest.mark.slow
async def test_training_learns_the_task_and_the_result_serves(prm_lm: Path, synthetic_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "prm"
    done = run_rm(
        "train", "--base", str(prm_lm), "--data", str(synthetic_data), "--out", str(out), "--max-steps", "120",
        "--lr", "8e-3", "--batch-size", "4", "--grad-accum", "1", "--eval-fraction", str(EVAL_FRACTION),
        "--logging-steps", "10", "--save-steps", "1000",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["global_step"] == 120 and report["eval_examples"] == 60 and report["train_examples"] == 180
    first_loss, last_loss = report["train_loss"][0][1], report["train_loss"][-1][1]
    assert last_loss < first_loss / 10, report["train_loss"]
    base, trained = report["base"], report["trained"]
    assert trained["loss"] < base["loss"] / 10
    assert trained["pairwise_accuracy"] >= 0.9 and trained["label_accuracy"] >= 0.9, trained
    assert base["label_accuracy"] < 0.75, "the random base model is near chance on single examples"
    assert f"pairwise accuracy {trained['pairwise_accuracy']:.3f}" in done.stdout

    _, held_out = split_by_query(read_train_records(synthetic_data), EVAL_FRACTION, seed=0)
    async with rm_server_process("--model", str(out), "--port", "0") as (_, url):
        async with RewardModelClient(url, retries=0) as client:
            results = await client.score([record["messages"] for record in held_out])
    served = pair_metrics([r.score for r in results], [r["label"] for r in held_out], [r["pair"] for r in held_out])
    assert served["pairs"] == 30
    assert served["pairwise_accuracy"] == pytest.approx(trained["pairwise_accuracy"])
    assert served["label_accuracy"] == pytest.approx(trained["label_accuracy"])


async def test_lora_checkpoints_resume_and_the_merged_model_loads(prm_lm: Path, synthetic_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    settings = dict(
        base=str(prm_lm), data=synthetic_data, out=out, lora=True, lora_r=4, learning_rate=1e-2, batch_size=4,
        grad_accum=2, save_steps=2, logging_steps=1, eval_fraction=0.1, warmup_ratio=0.0,
    )  # fmt: skip
    first = train_prm(TrainConfig(**settings, max_steps=4))
    assert first.resumed_from is None and first.global_step == 4
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]

    second = train_prm(TrainConfig(**settings, max_steps=6))
    assert second.resumed_from == str(out / "checkpoints" / "checkpoint-4") and second.global_step == 6
    assert [step for step, _ in second.train_loss] == [1, 2, 3, 4, 5, 6], "the loss curve continues the first run's"
    assert not (out / "adapter_config.json").exists(), "LoRA weights are merged into a plain checkpoint"

    prompt = read_train_records(synthetic_data)[0]["messages"]
    async with create_scorer("hf", ScorerConfig(model=str(out))) as trained, create_scorer("hf", ScorerConfig(model=str(prm_lm))) as base:
        (after,), (before,) = await trained.score([prompt]), await base.score([prompt])
    assert after.yes_logit != pytest.approx(before.yes_logit, abs=1e-4), "training changed the model"


def test_llamafactory_recipe_points_at_the_exported_dataset(synthetic_data: Path, tmp_path: Path) -> None:
    recipe_file = tmp_path / "prm.yaml"
    done = run_rm(
        "train", "--base", "Qwen/Qwen2.5-7B-Instruct", "--data", str(synthetic_data), "--out", str(tmp_path / "prm"),
        "--llamafactory-yaml", str(recipe_file), "--lr", "1e-6", "--epochs", "2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "llamafactory-cli train" in done.stdout and not (tmp_path / "prm").exists()
    recipe = yaml.safe_load(recipe_file.read_text())
    assert (recipe["stage"], recipe["finetuning_type"], recipe["template"]) == ("sft", "full", "qwen")
    assert (recipe["learning_rate"], recipe["num_train_epochs"], recipe["cutoff_len"]) == (1e-6, 2.0, 8192)
    dataset_info = json.loads((Path(recipe["dataset_dir"]) / DATASET_INFO_FILE).read_text())
    assert recipe["dataset"] in dataset_info
    assert (Path(recipe["dataset_dir"]) / dataset_info[recipe["dataset"]]["file_name"]).exists()


def test_bad_training_data_is_refused_with_one_line(prm_lm: Path, synthetic_data: Path, tmp_path: Path) -> None:
    done = run_rm("train", "--base", str(prm_lm), "--data", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"))
    assert done.returncode == 2  # bad input: nothing done
    assert done.stderr.strip() == f"error: {tmp_path / 'missing.jsonl'}: cannot read (No such file or directory)"

    bad = tmp_path / "bad.jsonl"
    bad.write_text(synthetic_data.read_text().splitlines()[0] + "\n{\"messages\": []}\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: `label` must be yes or no"):
        read_train_records(bad)
    with pytest.raises(DataError, match=r"answers 'yes' but the answer words are oui/non"):
        train_prm(TrainConfig(base=str(prm_lm), data=synthetic_data, out=tmp_path / "o", answer_words=("oui", "non")))


def test_pair_metrics_count_ties_half_and_skip_one_sided_pairs() -> None:
    metrics = pair_metrics(
        scores=[0.9, 0.2, 0.4, 0.4, 0.3, 0.6, 0.1, 0.2],
        labels=["yes", "no", "yes", "no", "yes", "no", "no", "no"],
        pairs=["a", "a", "b", "b", "c", "c", "d", "d"],
    )
    assert metrics["pairs"] == 3 and metrics["pairwise_accuracy"] == pytest.approx(1.5 / 3)
    assert metrics["label_accuracy"] == pytest.approx(5 / 8)
