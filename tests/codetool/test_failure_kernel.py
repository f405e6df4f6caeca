"""The shared kernel pieces behind the failure semantics: strict JSON, checked scores, retries, the directory lock."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, ValidationError

from codetool_kernel.dirlock import DirectoryBusy, DirectoryLock
from codetool_kernel.errors import CodeToolError, ConfigError, DataError, EndpointError, RewardModelError
from codetool_kernel.files import read_json, to_json, write_json_atomic
from codetool_kernel.retry import Backoff, TransientFault
from codetool_kernel.validation import describe_validation_error
from rm.scores import ScoreResult, score_from_top_logprobs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_json_writers_refuse_non_finite_numbers(tmp_path, bad):
    with pytest.raises(DataError, match="non-standard JSON"):
        to_json({"score": bad})
    with pytest.raises(DataError):
        write_json_atomic(tmp_path / "x.json", [1, {"r": bad}])
    assert not (tmp_path / "x.json").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_json_readers_refuse_non_standard_numbers(tmp_path, token):
    path = tmp_path / "x.json"
    path.write_text(f'{{"score": {token}}}')
    with pytest.raises(DataError, match=f"{token} is not a JSON number"):
        read_json(path)


@pytest.mark.parametrize(("score", "words"), [(math.nan, "non-finite"), (7.5, "outside [0, 1]"), (-3.0, "outside [0, 1]"),
                                              (math.inf, "non-finite"), ("0.5", "not a number"), (True, "not a number")])  # fmt: skip
def test_a_score_result_is_a_probability_or_a_prm_fault(score, words):
    with pytest.raises(RewardModelError, match=words.replace("[", r"\[").replace("]", r"\]")):
        ScoreResult(score, 0.0, 0.0)


def test_score_results_check_their_logits_and_may_have_none():
    assert ScoreResult(0.25).logits is None and ScoreResult(1.0, 3.0, -2.0).logits == (3.0, -2.0)
    with pytest.raises(RewardModelError, match="logit"):
        ScoreResult(0.5, math.inf, 0.0)
    with pytest.raises(RewardModelError):
        score_from_top_logprobs({"yes": math.nan}, "yes", "no")


def test_exit_codes_follow_the_error_class():
    assert (ConfigError.exit_code, DataError.exit_code) == (2, 2)
    assert CodeToolError.exit_code == EndpointError.exit_code == RewardModelError.exit_code == 1


def test_every_validation_problem_is_described():
    class Model(BaseModel):
        a: int = Field(gt=0)
        b: str

    with pytest.raises(ValidationError) as caught:
        Model.model_validate({"a": 0, "b": 3})
    text = describe_validation_error(caught.value)
    assert text.startswith("a: ") and "; b: " in text


async def test_backoff_retries_transient_faults_then_gives_up_in_one_error():
    attempts: list[float] = []

    async def failing() -> int:
        attempts.append(time.monotonic())
        raise TransientFault(f"fault {len(attempts)}")

    with pytest.raises(EndpointError, match=r"^gave up after 3: fault 3$"):
        await Backoff(retries=2, base_s=0.0).call(failing, lambda n, fault: EndpointError(f"gave up after {n}: {fault}"))
    assert len(attempts) == 3
    assert Backoff(base_s=0.5, max_s=8).delay(0) == 0.5 and Backoff(base_s=0.5, max_s=8).delay(10) == 8


def test_a_directory_has_one_writer_and_a_dead_holder_is_taken_over(tmp_path):
    with DirectoryLock(tmp_path, command="agent run"):
        with pytest.raises(DirectoryBusy, match=rf"in use by agent run \(pid {os.getpid()} on "):
            DirectoryLock(tmp_path, command="agent collect").acquire()
    assert not (tmp_path / ".lock").exists()
    # a holder killed with -9 leaves its record, but the kernel released its flock
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from codetool_kernel.dirlock import DirectoryLock; "
         "DirectoryLock(sys.argv[1], command='agent run').acquire(); print('held', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    with pytest.raises(DirectoryBusy, match=f"pid {holder.pid}"):
        DirectoryLock(tmp_path, command="agent run").acquire()
    holder.kill()
    holder.wait()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == holder.pid
    with DirectoryLock(tmp_path, command="agent run") as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == holder.pid
