"""The sandbox image: tagged by a hash of the runner, built once per runner (idempotent)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import docker
import pytest

from sandbox import image
from sandbox.forkserver import RUNNER_PACKAGE
from sandbox.runner.__main__ import _parser

from .conftest import require_docker


@pytest.fixture
def runner_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "runner"
    shutil.copytree(RUNNER_PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(image, "RUNNER_PACKAGE", copy)
    return copy


def test_the_tag_follows_the_runner(runner_copy: Path) -> None:
    tag = image.default_image_tag()
    assert re.fullmatch(r"codetool-sandbox:[0-9a-f]{16}", tag)
    (runner_copy / "__pycache__").mkdir()
    (runner_copy / "__pycache__" / "worker.cpython-311.pyc").write_bytes(b"compiled")
    assert image.default_image_tag() == tag  # build leftovers do not count
    worker = runner_copy / "worker.py"
    worker.write_text(worker.read_text() + "\n# changed\n")
    assert image.default_image_tag() != tag
    worker.rename(runner_copy / "worker2.py")
    assert len({tag, image.default_image_tag()}) == 2


def test_the_image_command_is_one_the_runner_accepts() -> None:
    [cmd_line] = [line for line in image.DOCKERFILE.read_text().splitlines() if line.startswith("CMD ")]
    argv = json.loads(cmd_line.removeprefix("CMD "))
    assert tuple(argv) == image.IMAGE_COMMAND
    assert argv[:6] == ["python3", "-E", "-s", "-S", "-m", "runner"]
    args = _parser().parse_args(argv[6:])
    assert (args.mode, args.workdir, args.fork_server, args.listen_fd) == ("plain", "/tmp", None, None)


def test_the_offline_recipe_is_cached_under_its_own_hash(tmp_path: Path) -> None:
    bookworm = image.ImageRecipe(cache_dir=tmp_path)
    trixie = image.ImageRecipe(suite="trixie", cache_dir=tmp_path)
    assert bookworm.base_tag != trixie.base_tag
    assert bookworm.rootfs_tarball.parent == tmp_path and bookworm.rootfs_tarball != trixie.rootfs_tarball


@pytest.mark.docker
def test_building_again_does_nothing() -> None:
    require_docker()
    outcome = image.build_image()
    assert outcome == image.BuildOutcome(image.default_image_tag(), built=False, base="")
    client = docker.from_env()
    try:
        labels = client.images.get(outcome.tag).labels
    finally:
        client.close()
    assert labels.get(image.IMAGE_LABEL) == "1"
