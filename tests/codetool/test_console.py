"""The `codetool` console script (`python -m codetool`, the same app): every command mounted, one exit-code policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codetool.console import app
from codetool_kernel.cli import BAD_INPUT, OK

REPO = Path(__file__).resolve().parents[2]


def _codetool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "codetool", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ["solve", "run", "collect", "audit", "sandbox", "tools", "rm", "eval"]),
        (("rm",), ["serve", "label", "train"]),
        (("sandbox",), ["run", "build-image"]),
        (("tools",), ["serve-virtual"]),
        (("eval",), ["answers", "report"]),
    ],
)
def test_every_command_is_mounted(args: tuple[str, ...], expected: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == OK, result.output
    listed = {line.split()[1] for line in result.output.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    assert set(expected) <= listed, result.output


def test_a_library_error_is_one_line_and_its_exit_code(tmp_path: Path) -> None:
    done = _codetool("collect", "--queries", str(tmp_path / "none.json"), "--out", str(tmp_path / "out"))
    assert done.returncode == BAD_INPUT
    assert done.stderr.strip() == f"error: {tmp_path / 'none.json'}: no such file"


def test_a_mounted_package_command_runs_under_the_same_policy(tmp_path: Path) -> None:
    cell = tmp_path / "cell.py"
    cell.write_text("print(6 * 7)\n")
    done = _codetool("sandbox", "run", str(cell), "--timeout", "10")
    assert done.returncode == OK and '"stdout": "42\\n"' in done.stdout
    done = _codetool("eval", "answers", str(tmp_path / "no-run"), "--model", "m")
    assert done.returncode == BAD_INPUT and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1


def test_the_package_apps_still_run_alone() -> None:
    done = subprocess.run([sys.executable, "-m", "agent", "solve", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == OK and "--toolset" in done.stdout
