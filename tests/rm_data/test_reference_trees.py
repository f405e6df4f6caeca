"""Step trees made by the reference release (`dfs_data`), and our files from before the current names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from codetool_kernel.files import write_json_atomic
from rm.export import TRAIN_FILE, read_train_records
from rm.tree import DFS_DIR, PAIR_DIR, SFT_DIR, load_tree
from tests.rm_data.trees import UNBALANCED, collected_tree

REPO = Path(__file__).resolve().parents[2]

S1 = "##Step 1: Search\n```python\nimport requests\nr = {'id': 7}\nprint(r)\n```\n[Step 1 Finished]\n"
S1_BAD = "##Step 1: Search badly\n```python\nr = {}\nprint(r['id'])\n```\n[Step 1 Finished]\n"
S2_OK = "##Step 2: Details\n```python\nprint('details of', r['id'])\n```\n[All Finished]\n[Step 2 Finished]\n"
S2_BAD = "##Step 2: Details badly\n```python\nprint(r['nope'])\n```\n[All Finished]\n[Step 2 Finished]\n"
PROSE = "##Step 2: I think the answer is 7.\n[All Finished]"


def reference_tree() -> dict[str, Any]:
    """A tree as the reference release's data collection writes it (no fields of ours).

    `1-1-2` and `1-2-2` wrote no code: the path text stays the parent's, the completion is in `res`, status 0.
    """
    entries = [
        ("1-1", S1, False, "{'id': 7}", 0),
        ("1-1-1", S1 + S2_OK, True, "details of 7", 0),
        ("1-1-2", S1, True, PROSE, 0),
        ("1-2", S1_BAD, False, "Exception Type: KeyError, Exception Value: 'id'", 1),
        ("1-2-1", S1_BAD + S2_BAD, True, "Exception Type: KeyError, Exception Value: 'id'", 1),
        ("1-2-2", S1_BAD, True, PROSE, 0),
    ]
    return {
        "q_id": 588,
        "query": "What are the details of the first result?",
        "instruction": "API docs: search, details.\nBased on provided APIs, write Python step by step.",
        "infer_path": [{"path_name": name, "content": content, "is_leaf": leaf} for name, content, leaf, _, _ in entries],
        "exec_res": {name: {"code": "...", "res": res, "status": status} for name, _, _, res, status in entries},
    }


def label(in_dir: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rm", "label", "--in", str(in_dir), "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_reference_tree_loads_with_our_fields_derived(tmp_path: Path):
    write_json_atomic(tmp_path / "588_path.json", reference_tree())
    tree = load_tree(tmp_path / "588_path.json")
    assert tree.q_id == 588 and tree.api_docs == "API docs: search, details."
    assert tree.entry("1-2-2").step_content == PROSE and tree.exec_res["1-2-1"].status == 1
    assert (tree.n, tree.max_depth) == (2, 2)
    prose = tree.entry("1-1-2")
    assert (prose.has_code, prose.finished, prose.step_content) == (False, True, PROSE)
    assert tree.entry("1-1-1").step_content == S2_OK and tree.entry("1-1-1").has_code
    assert tree.entry("1-1").step_content == S1 and not tree.entry("1-1").finished


def test_rm_label_reads_reference_trees(tmp_path: Path):
    write_json_atomic(tmp_path / DFS_DIR / "588_path.json", reference_tree())
    done = label(tmp_path, tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "1 read, 0 skipped" in done.stdout
    pairs = json.loads((tmp_path / "out" / PAIR_DIR / "588_pair.json").read_text())
    names = [[a["path_name"], b["path_name"]] for a, b in pairs["pair_path"]]
    assert names == [["1-1", "1-2"], ["1-2-1", "1-2-2"]]
    assert pairs["q_id"] == 588
    for first, second in pairs["pair_path"]:
        for entry in (first, second):
            assert {"path_name", "content", "current_exec", "hard_estimate", "soft_estimate", "latent_reward"} <= set(entry)
            if entry["path_name"].count("-") > 1:
                assert entry["path_name"][:-2] in pairs["exec_res"], "a step's parent is its name less `-k`"
    records = read_train_records(tmp_path / "out" / SFT_DIR / TRAIN_FILE)
    assert {record["label"] for record in records} == {"yes", "no"}
    step1 = next(record for record in records if record["path"] == "1-1")
    assert step1["label"] == "yes" and step1["messages"][1]["content"] == S1


def test_rm_label_exits_2_when_it_read_nothing(tmp_path: Path):
    (tmp_path / DFS_DIR).mkdir()
    (tmp_path / DFS_DIR / "1_path.json").write_text("{not json")
    (tmp_path / DFS_DIR / "2_path.json").write_text(json.dumps({"q_id": 2, "infer_path": [], "exec_res": {}}))
    done = label(tmp_path, tmp_path / "out")
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("error: none of the 2 tree files could be read")
    assert not (tmp_path / "out" / SFT_DIR / TRAIN_FILE).exists()


def test_an_older_tree_of_ours_loads_with_the_current_names(tmp_path: Path):
    current = collected_tree(UNBALANCED, "q1").model_dump(mode="json")
    old = json.loads(json.dumps(current).replace('"1-', '"'))
    assert {entry["path_name"] for entry in old["infer_path"]} >= {"1", "2", "2-1"}, "the old names"
    write_json_atomic(tmp_path / "q1_path.json", old)
    tree = load_tree(tmp_path / "q1_path.json")
    assert [entry.path_name for entry in tree.infer_path] == [entry["path_name"] for entry in current["infer_path"]]
    assert set(tree.exec_res) == set(current["exec_res"])
