"""`rm label` on tree files: scored and pair files in the reference layout, SFT export, statistics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codetool_kernel.errors import DataError
from codetool_kernel.files import write_json_atomic
from rm.export import DATASET_INFO_FILE, SHAREGPT_FILE, TRAIN_FILE, read_train_records
from rm.labelling import STATS_FILE, label_trees
from rm.labels import LabelConfig
from rm.prompt import PriorStep, build_prm_messages
from rm.tree import DFS_DIR, PAIR_DIR, SCORED_DIR, SFT_DIR, load_tree, tree_file
from tests.rm_data.trees import OK, UNBALANCED, Node, collected_tree

REPO = Path(__file__).resolve().parents[2]


def write_tree(root: Path, spec: dict[str, Node], q_id: str) -> Path:
    file = tree_file(root, q_id)
    write_json_atomic(file, collected_tree(spec, q_id).model_dump(mode="json"))
    return file


def test_scored_and_pair_files_carry_the_reference_fields(tmp_path: Path) -> None:
    write_tree(tmp_path, UNBALANCED, "q1")
    stats = label_trees(tmp_path, tmp_path)

    scored = json.loads((tmp_path / SCORED_DIR / "q1_scored.json").read_text())
    assert list(scored)[:5] == ["q_id", "query", "instruction", "infer_path", "exec_res"]
    entry = next(e for e in scored["infer_path"] if e["path_name"] == "1-1")
    assert {"path_name", "content", "is_leaf", "current_exec", "soft_estimate", "hard_estimate", "latent_reward", "tau"} <= set(entry)
    assert entry["current_exec"] is True and entry["hard_estimate"] == 1 and entry["tau"] == 5
    assert scored["label_config"] == LabelConfig().model_dump()

    pairs = json.loads((tmp_path / PAIR_DIR / "q1_pair.json").read_text())
    assert list(pairs)[:5] == ["q_id", "query", "instruction", "pair_path", "exec_res"]
    assert [[a["path_name"], b["path_name"]] for a, b in pairs["pair_path"]] == [["1-1", "1-2"], ["1-1-1", "1-1-2"], ["1-2-1", "1-2-2"]]
    first, second = pairs["pair_path"][0]
    assert (first["label"], second["label"], first["latent_reward"]) == ("yes", "no", entry["latent_reward"])

    assert (stats.files, stats.nodes, stats.leaves, stats.leaves_succeeded, stats.pairs) == (1, 8, 5, 3, 3)
    assert stats.labels == {"yes": 3, "no": 3} and dict(stats.pair_reasons) == {"execution": 3}
    assert json.loads((tmp_path / STATS_FILE).read_text())["examples"] == 6


def test_sft_export_loads_as_sharegpt_and_matches_the_live_prompts(tmp_path: Path) -> None:
    tree = collected_tree(UNBALANCED, "q1", api_docs="API 1: get_weather(city)")
    write_json_atomic(tree_file(tmp_path, "q1"), tree.model_dump(mode="json"))
    label_trees(tmp_path, tmp_path / "labelled", output_chars=7)
    sft = tmp_path / "labelled" / SFT_DIR

    info = json.loads((sft / DATASET_INFO_FILE).read_text())
    entry = info["codetool_prm"]
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "conversations", "system": "system"}
    assert (sft / entry["file_name"]).name == SHAREGPT_FILE
    examples = json.loads((sft / SHAREGPT_FILE).read_text())
    assert len(examples) == 6
    for example in examples:
        assert set(example) == {"conversations", "system"}
        assert [turn["from"] for turn in example["conversations"]] == ["human", "gpt"]
        assert example["conversations"][1]["value"] in ("yes", "no")

    # Step 1-2's prompt is what the agent asks the PRM at that point: docs, query, step 1 with its
    # output (cut to output_chars), the candidate step's own text.
    records = read_train_records(sft / TRAIN_FILE)
    record = next(r for r in records if r["path"] == "1-1-2")
    expected = build_prm_messages(
        api_docs="API 1: get_weather(city)",
        query="query q1",
        previous=[PriorStep(tree.entry("1-1").step_content, tree.exec_res["1-1"].res)],
        candidate=tree.entry("1-1-2").step_content,
        output_chars=7,
    )
    assert record["messages"] == expected
    assert (record["label"], record["answer"], record["pair"]) == ("no", "no", "q1:1-1-1|1-1-2")
    sharegpt = next(e for e in examples if e["conversations"][0]["value"] == expected[1]["content"])
    assert sharegpt["system"] == expected[0]["content"]


def test_identical_sibling_steps_and_repeated_examples_are_dropped(tmp_path: Path) -> None:
    # Siblings 1 and 2 write the same text but one raised: contradicting labels for one prompt.
    spec = {"1-1": Node(True, True, OK, True), "1-2": Node(True, True, 1, True)}
    tree = collected_tree(spec, "q1")
    data = tree.model_dump(mode="json")
    data["infer_path"][1]["step_content"] = data["infer_path"][0]["step_content"]
    write_json_atomic(tree_file(tmp_path, "q1"), data)
    write_tree(tmp_path, UNBALANCED, "q2")
    write_tree(tmp_path, UNBALANCED, "q3")
    stats = label_trees(tmp_path, tmp_path)
    assert stats.dropped == {"siblings wrote the same step": 2}
    assert stats.pairs == 7 and stats.examples == 12

    # A second file with the same tree as q2 (e.g. the query collected twice) repeats all its examples.
    write_json_atomic(tree_file(tmp_path, "q4"), collected_tree(UNBALANCED, "q2").model_dump(mode="json"))
    stats = label_trees(tmp_path, tmp_path)
    assert stats.dropped["same prompt and answer seen before"] == 6


def test_unusable_files_are_skipped_with_their_reason(tmp_path: Path) -> None:
    write_tree(tmp_path, UNBALANCED, "good")
    (tmp_path / DFS_DIR / "broken_path.json").write_text("{not json")
    bad = collected_tree(UNBALANCED, "bad").model_dump(mode="json")
    bad["infer_path"] = [e for e in bad["infer_path"] if e["path_name"] != "1-1-1-2"]
    bad["infer_path"][0]["is_leaf"] = True
    write_json_atomic(tree_file(tmp_path, "bad"), bad)
    stats = label_trees(tmp_path, tmp_path / "out")
    assert stats.files == 1
    assert "not valid JSON" in stats.skipped["broken_path.json"]
    assert "leaf 1-1 has children" in stats.skipped["bad_path.json"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["exec_res"].pop("1-2-1"), "exec_res has no entry for 1-2-1"),
        (lambda d: d["infer_path"][0].update(path_name="1-0"), "path_name '1-0' is not like 1-2-1"),
        (lambda d: d.pop("api_docs"), "api_docs: Field required"),
        (lambda d: d["infer_path"][1].update(is_leaf=True), "leaf 1-1-1 has children"),
        (lambda d: [d["infer_path"].remove(e) for e in list(d["infer_path"]) if e["path_name"].startswith("1-2-")], "node 1-2 is not a leaf but was never expanded"),
    ],
)
def test_tree_files_are_checked_on_load(tmp_path: Path, change, message: str) -> None:
    data = collected_tree(UNBALANCED).model_dump(mode="json")
    change(data)
    write_json_atomic(tmp_path / "q_path.json", data)
    with pytest.raises(DataError, match="^" + str(tmp_path / "q_path.json") + ": .*" + message.replace("(", r"\(")):
        load_tree(tmp_path / "q_path.json")


def test_label_command_prints_statistics(tmp_path: Path) -> None:
    write_tree(tmp_path, UNBALANCED, "q1")
    done = subprocess.run(
        [sys.executable, "-m", "rm", "label", "--in", str(tmp_path), "--out", str(tmp_path / "out"),
         "--codeless-leaf", "succeeded", "--tie-break", "both-no", "--alpha", "0.5"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "8 (5 leaves, 4 succeeded)" in done.stdout and "yes" in done.stdout
    scored = json.loads((tmp_path / "out" / SCORED_DIR / "q1_scored.json").read_text())
    assert scored["label_config"] == {"alpha": 0.5, "beta": 0.95, "horizon": 20.0, "codeless_leaf": "succeeded", "tie_break": "both-no"}
    missing = subprocess.run(
        [sys.executable, "-m", "rm", "label", "--in", str(tmp_path / "nothing"), "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: {tmp_path / 'nothing'}: no such folder"
