"""The runner's pieces on their own: query selection, ids, shards, prices, percentiles, layout."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.runner import RunLayout, RunSettings, load_prices, percentile, select_queries
from agent.runner.layout import check_query_id
from agent.runner.ray_executor import WorkerChannel, shard_ids
from agent.trajectory import Trajectory
from codetool_kernel.errors import ConfigError, DataError
from sandbox.audit import AuditRecord
from tests.runner.scenario import STB_DATA, TMDB_QUERIES, TMDB_SPEC


def stb_settings(tmp_path: Path, **fields) -> RunSettings:
    return RunSettings(benchmark="stabletoolbench", data=STB_DATA, out=tmp_path, **fields)


def test_groups_ids_and_limit_select_in_file_order(tmp_path):
    settings = stb_settings(tmp_path, groups=("G1_instruction", "G2_category"), filtered=True, limit=2)
    selected = select_queries(settings)
    assert [(q.group, q.query_id) for q in selected][:2] == [("G1_instruction", "588"), ("G1_instruction", "608")]
    assert [q.group for q in selected] == ["G1_instruction"] * 2 + ["G2_category"] * 2
    only = select_queries(stb_settings(tmp_path, groups=("G1_instruction",), query_ids=("1073",)))
    assert [q.query_id for q in only] == ["1073"]


def test_repeated_ids_across_groups_are_refused(tmp_path):
    folder = tmp_path / "data" / "test_instruction"
    folder.mkdir(parents=True)
    query = json.loads((STB_DATA / "test_instruction" / "G1_instruction.json").read_text())[0]
    for group in ("A", "B"):
        (folder / f"{group}.json").write_text(json.dumps([query]))
    settings = RunSettings(benchmark="stabletoolbench", data=tmp_path / "data", out=tmp_path, groups=("A", "B"))
    with pytest.raises(DataError, match="repeat across the selected groups: 588"):
        select_queries(settings)


def test_a_query_file_is_its_own_group(tmp_path):
    file = STB_DATA / "filter_test_instruction" / "G1_tool.json"
    assert {
        q.group for q in select_queries(RunSettings(benchmark="stabletoolbench", data=file, out=tmp_path))
    } == {"G1_tool"}
    with pytest.raises(ConfigError, match="group G1_tool"):
        select_queries(
            RunSettings(benchmark="stabletoolbench", data=file, out=tmp_path, groups=("G2_category",))
        )
    tmdb = RunSettings(benchmark="tmdb", data=TMDB_QUERIES, spec=TMDB_SPEC, out=tmp_path, groups=("x",))
    with pytest.raises(ConfigError, match="query file of group tmdb; drop --group"):
        select_queries(tmdb)


@pytest.mark.parametrize("query_id", ["../etc", "a/b", "", ".hidden", "x" * 200])
def test_ids_that_cannot_name_a_file_are_refused(query_id):
    with pytest.raises(DataError, match="cannot name a trajectory file"):
        check_query_id(query_id)


def test_shards_are_dealt_round_robin():
    assert shard_ids(["a", "b", "c", "d", "e"], 2) == [["a", "c", "e"], ["b", "d"]]
    assert shard_ids(["a"], 8) == [["a"]]


def test_a_worker_sends_audit_records_in_batches_ahead_of_the_results():
    sent: queue.Queue = queue.Queue()  # what the worker puts on Ray's queue, in order
    channel = WorkerChannel(sent, batch=3, flush_s=3600)

    def record(number: int) -> AuditRecord:
        return AuditRecord(query_id="q1", node=f"1-{number}", backend="restricted", started_at="t", code="", code_sha256="", status="ok")

    for number in range(1, 5):
        channel.write(record(number))
    channel.write_trajectory(Trajectory(q_id="q1", query="text", instruction=""))
    channel.write(record(5))
    channel.write_failure("q2", "it broke", None)
    channel.close()
    messages = [sent.get_nowait() for _ in range(sent.qsize())]
    shapes = [(kind, query_id, [r["node"] for r in data] if kind == "audit" else None) for kind, query_id, data in messages]
    assert shapes == [
        ("audit", "", ["1-1", "1-2", "1-3"]),
        ("audit", "", ["1-4"]),
        ("finished", "q1", None),
        ("audit", "", ["1-5"]),
        ("failed", "q2", None),
    ]
    assert AuditRecord.model_validate(messages[0][2][0]) == record(1)


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (50.0, 90.0, 99.0)
    assert percentile([3.0], 99) == 3.0 and percentile([], 50) is None


def test_price_table_and_cost(tmp_path):
    table = tmp_path / "prices.yaml"
    table.write_text("m1: {prompt: 2.0, completion: 6.0}\n")
    settings = RunSettings(benchmark="tmdb", data=TMDB_QUERIES, out=tmp_path, prices=load_prices(table))
    assert settings.cost("m1", {"prompt_tokens": 1_000_000, "completion_tokens": 500_000}) == 5.0
    assert settings.cost("other", {"prompt_tokens": 10}) is None
    table.write_text("m1: {prompt: cheap}\n")
    with pytest.raises(ConfigError, match="price table .*m1"):
        load_prices(table)


def test_prepare_removes_temporary_files_left_by_a_killed_writer(tmp_path):
    layout = RunLayout(tmp_path)
    layout.prepare()
    stale = layout.trajectories / ".588.json.abc.tmp"
    stale.write_text("{")
    (layout.trajectories / "588.json").write_text("{")
    layout.prepare()
    assert not stale.exists()
    scan = layout.scan(["588", "608"])
    assert scan.finished == {} and "588.json: not valid JSON" in scan.corrupt["588"]


def test_the_benchmark_is_a_registered_query_source(tmp_path):
    with pytest.raises(ValidationError, match="unknown query source 'nope'; choose one of") as info:
        RunSettings(benchmark="nope", data=TMDB_QUERIES, out=tmp_path)
    assert "stabletoolbench" in str(info.value) and "tmdb" in str(info.value)


def test_a_tmdb_folder_holds_a_query_file_per_run(tmp_path):
    folder = tmp_path / "tmdb"
    folder.mkdir()
    (folder / "part.json").write_text(TMDB_QUERIES.read_text())
    settings = RunSettings(benchmark="tmdb", data=folder, out=tmp_path, groups=("part",), limit=2)
    assert [q.query_id for q in select_queries(settings)] == ["q0", "q1"]
