"""The bubblewrap command that gives the runner of the process and restricted backends its filesystem view.

Inside, the runner sees the system's `/usr` (and the `/bin`, `/lib*` links or directories),
the Python installation, and the runner package at `/opt/codetool/runner`, all read-only;
an empty `/tmp`, a minimal `/dev`, a `/proc` of its own; new network, pid, IPC and UTS
namespaces; and nothing else of the host (no `/etc`, `/home`, `/root`, no host `/tmp`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Sequence

from sandbox.forkserver import RUNNER_PACKAGE

RUNNER_HOME = "/opt/codetool"
SANDBOX_TMP = "/tmp"
_SYSTEM_DIRS = ("/usr",)
_SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# kept by a server started as root: set each child's uid, kill a uid's leftovers, clean fallback dirs
_ROOT_CAPABILITIES = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER")
_PROBE_TIMEOUT_S = 10.0


def bwrap_executable() -> str | None:
    """The `bwrap` on PATH, if any."""
    return shutil.which("bwrap")


def sandbox_python() -> tuple[str, str]:
    """The real interpreter (not a venv's link to it) and the installation it needs."""
    return os.path.realpath(sys._base_executable), os.path.realpath(sys.base_prefix)


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _parents(path: str) -> list[str]:
    parents = []
    while (path := os.path.dirname(path)) not in ("/", ""):
        parents.append(path)
    return parents[::-1]


def _read_only_tree(path: str) -> list[str]:
    """Bind `path` read-only at the same place, its parents made traversable (0755)."""
    argv: list[str] = []
    for parent in _parents(path):
        argv += ["--perms", "0755", "--dir", parent]
    return [*argv, "--ro-bind", path, path]


def bwrap_argv(bwrap: str, tmp_mb: int, packages: Sequence[str] = ()) -> list[str]:
    """Everything before the command: the view described in the module docstring.

    `packages`: directories of packages the runner imports besides the standard library,
    shown read-only beside it (importable, as the runner starts in `RUNNER_HOME`).
    """
    python, prefix = sandbox_python()
    argv = [
        bwrap, "--die-with-parent", "--new-session",
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
        "--setenv", "LC_ALL", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        "--setenv", "PYTHONIOENCODING", "utf-8", "--setenv", "HOME", SANDBOX_TMP, "--setenv", "TMPDIR", SANDBOX_TMP,
    ]  # fmt: skip
    if os.geteuid() == 0:
        argv += ["--cap-drop", "ALL"]
        for capability in _ROOT_CAPABILITIES:
            argv += ["--cap-add", capability]
    for directory in _SYSTEM_DIRS:
        argv += ["--ro-bind", directory, directory]
    for link in _SYSTEM_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    trees = [prefix] if _inside(python, prefix) else [prefix, os.path.dirname(python)]
    for tree in trees:
        if not any(_inside(tree, directory) for directory in _SYSTEM_DIRS):
            argv += _read_only_tree(tree)
    argv += ["--ro-bind", str(RUNNER_PACKAGE), f"{RUNNER_HOME}/runner"]
    for package in packages:
        argv += ["--ro-bind", package, f"{RUNNER_HOME}/{os.path.basename(package)}"]
    argv += ["--dev", "/dev", "--proc", "/proc", "--size", str(tmp_mb * 1024 * 1024), "--tmpfs", SANDBOX_TMP]
    return [*argv, "--chdir", RUNNER_HOME, "--", python]


async def bwrap_refusal(bwrap: str) -> str | None:
    """Why bubblewrap cannot make these namespaces here, or None when it can."""
    try:
        process = await asyncio.create_subprocess_exec(
            *bwrap_argv(bwrap, tmp_mb=1), "-E", "-s", "-S", "-c", "pass",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            _, stderr = await process.communicate()
    except OSError as exc:
        return f"bwrap cannot be started: {exc}"
    except TimeoutError:
        process.kill()
        await process.wait()
        return "bwrap did not finish its probe in time"
    if process.returncode != 0:
        return " ".join(stderr.decode(errors="replace").split())[:300] or f"bwrap exited with status {process.returncode}"
    return None
