"""The reference release's part of a trajectory file: how we write it and how we read theirs.

Written beside our own fields:
- `q_id`: the benchmark's own id (an int for StableToolBench);
- `infer_path`: every explored node, `{path_name, content, is_leaf, chosen}` (and ours: `step_content`,
  `has_code`, `finished`), where `content` is the text of every step from the first down to this node; the nodes off the chosen path come first
  and the chosen path last, in step order, so that the last entry is the chosen leaf;
- `exec_res[path]`: `{code, res, status}` for every explored node, the chosen path first, with
  `code` the program that ran for the node (the replayed ancestors, then the step), `res` what it
  printed (or its error), `status` 0 ran, 1 raised, 2 ran but printed a tool-failure marker; our
  `step_code` holds the step alone;
- `answer`: the final answer, when the path gave one.

Read: a file of the reference release (no `nodes`), and our files from before the current node
names (`codetool_kernel.nodepaths`), both turned into the current `Trajectory` fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.parsing import parse_step
from codetool_kernel.nodepaths import is_legacy, own_step_text, parent_of, path_order, step_of, upgrade_path, wrote_step
from rm.tree import ExecRecord, PathEntry

if TYPE_CHECKING:
    from agent.trajectory import StepNode, Trajectory

READ_NOTE = "read from the reference release's trajectory layout"


def reference_part(trajectory: Trajectory) -> dict[str, Any]:
    """`q_id`, `infer_path`, `exec_res` and (when there is one) `answer`, as the reference writes them."""
    chosen = set(trajectory.chosen_path)
    off_path = sorted((node for node in trajectory.nodes if node.path not in chosen), key=lambda n: path_order(n.path))
    infer_path = [
        {**path_entry(trajectory, node).model_dump(mode="json"), "chosen": node.path in chosen}
        for node in [*off_path, *trajectory.chosen_nodes()]
    ]
    exec_res = {
        node.path: exec_record(trajectory, node).model_dump(mode="json")
        for node in [*trajectory.chosen_nodes(), *off_path]
    }
    part: dict[str, Any] = {"q_id": trajectory.q_id, "infer_path": infer_path, "exec_res": exec_res}
    if trajectory.final_answer is not None:
        part["answer"] = trajectory.final_answer
    return part


def path_entry(trajectory: Trajectory, node: StepNode) -> PathEntry:
    """`node` as an `infer_path` entry: `content` is every step's text from the first down to it."""
    chain = trajectory.ancestors(node)
    return PathEntry(
        path_name=node.path,
        content="".join(step.content for step in [*chain, node]),
        is_leaf=node.is_leaf,
        step_content=node.content,
        has_code=bool(node.code),
        finished=node.finished,
    )


def exec_record(trajectory: Trajectory, node: StepNode) -> ExecRecord:
    """`exec_res[node.path]`: the program that ran for `node` (replayed ancestors, then its step), its output, status."""
    from agent.trajectory import program_so_far

    return ExecRecord(
        code=program_so_far(trajectory.ancestors(node), node), res=node.output, status=node.status, step_code=node.code
    )


def upgrade_trajectory_data(data: Any) -> Any:
    """Trajectory fields from any layout we read; anything else is returned as it is (to fail validation)."""
    if not isinstance(data, dict):
        return data
    if isinstance(data.get("nodes"), list):
        return _rename_legacy_nodes(data)
    if isinstance(data.get("infer_path"), list) and isinstance(data.get("exec_res"), dict):
        return _from_reference(data)
    return data


def _rename_legacy_nodes(data: dict[str, Any]) -> dict[str, Any]:
    nodes = data["nodes"]
    if not is_legacy(node.get("path") for node in nodes if isinstance(node, dict)):
        return data
    renamed = []
    for node in nodes:
        if isinstance(node, dict) and isinstance(node.get("path"), str):
            parent = node.get("parent")
            node = {**node, "path": upgrade_path(node["path"]), "parent": upgrade_path(parent) if parent else None}
        renamed.append(node)
    sampling = [
        {**record, "parent": upgrade_path(record["parent"])} if isinstance(record, dict) and record.get("parent") else record
        for record in data.get("sampling") or []
    ]
    from agent.trajectory import SCHEMA_VERSION

    chosen = [upgrade_path(path) for path in data.get("chosen_path") or [] if isinstance(path, str)]
    return {**data, "schema_version": SCHEMA_VERSION, "nodes": renamed, "sampling": sampling, "chosen_path": chosen}


def _from_reference(data: dict[str, Any]) -> dict[str, Any]:
    entries = [entry for entry in data["infer_path"] if isinstance(entry, dict) and isinstance(entry.get("path_name"), str)]
    exec_res = {str(key): value for key, value in data["exec_res"].items() if isinstance(value, dict)}
    if is_legacy(entry["path_name"] for entry in entries):
        entries = [{**entry, "path_name": upgrade_path(entry["path_name"])} for entry in entries]
        exec_res = {upgrade_path(key): value for key, value in exec_res.items()}
    whole_text = {entry["path_name"]: str(entry.get("content") or "") for entry in entries}
    nodes = [_reference_node(entry, exec_res.get(entry["path_name"], {}), whole_text) for entry in entries]
    nodes.sort(key=lambda node: path_order(node["path"]))
    chosen = _chosen_path(entries)
    for node in nodes:
        node["chosen"] = node["path"] in chosen
    last = next((node for node in nodes if chosen and node["path"] == chosen[-1]), None)
    finished = bool(last and last["finished"])
    answer = data.get("answer")
    return {
        "q_id": data.get("q_id", ""),
        "query": data.get("query", ""),
        "instruction": data.get("instruction", ""),
        "nodes": nodes,
        "chosen_path": chosen,
        "final_answer": answer if isinstance(answer, str) else None,
        "finished": finished,
        "stop_reason": None if last is None else "finished" if finished else "max_depth" if last["code"] else "no_code",
        "notes": [READ_NOTE],
    }


def _reference_node(entry: dict[str, Any], record: dict[str, Any], whole_text: dict[str, str]) -> dict[str, Any]:
    path = entry["path_name"]
    own = own_step_text(path, whole_text)
    result = str(record.get("res") or "")
    # A candidate without code leaves the path text as its parent's; the reference keeps its completion in `res`.
    has_step = wrote_step(path, own)
    completion = own if has_step else result
    parsed = parse_step(completion)
    code = str(record.get("step_code") or parsed.code)
    status = record.get("status", 1) if code else 1
    status = status if status in (0, 1, 2) else 1
    ran_output = code and status != 1
    return {
        "path": path,
        "depth": step_of(path),
        "index": int(path.rsplit("-", 1)[1]),
        "parent": parent_of(path),
        "completion": completion,
        "content": own if has_step else completion,
        "title": parsed.title,
        "code": code,
        "finished": parsed.finished,
        "stdout": result if ran_output else "",
        "error": result if code and status == 1 else None,
        "status": status,
        "r_spot": 1.0 if code and status == 0 else 0.0,
        "is_leaf": bool(entry.get("is_leaf")),
        "chosen": False,
    }


def _chosen_path(entries: list[dict[str, Any]]) -> list[str]:
    """The chosen path: the entries marked `chosen`, else the last entry and its ancestors (reference inference)."""
    if any("chosen" in entry for entry in entries):
        marked = [entry["path_name"] for entry in entries if entry.get("chosen")]
        return sorted(marked, key=path_order)
    if not entries:
        return []
    known = {entry["path_name"] for entry in entries}
    chain, cursor = [], entries[-1]["path_name"]
    while cursor is not None and cursor in known:
        chain.insert(0, cursor)
        cursor = parent_of(cursor)
    return chain
