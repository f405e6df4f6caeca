"""The setup hook of the Ray workers in `test_ray_cluster.py`: nodes that do not share the driver's files.

Each worker process moves into a working directory of its own and installs an audit hook
(`sys.addaudithook`) that refuses, with `PermissionError`, every open, listing, creation,
removal or SQLite connection under the paths in `FORBIDDEN_ENV` (the driver's run directories
and the query files), and notes each refusal in a file under `VIOLATIONS_ENV`. A worker that
reached for the run directory would thus fail or lose what it wrote, and leave a note.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

FORBIDDEN_ENV = "CODETOOL_TEST_FORBIDDEN"
"""Paths (joined with os.pathsep) that only the driver may touch."""
VIOLATIONS_ENV = "CODETOOL_TEST_VIOLATIONS"
"""Folder where each refused access is noted, one file per worker process."""
HOMES_ENV = "CODETOOL_TEST_WORKER_HOMES"
"""Folder under which each worker process gets its own working directory."""

_PATH_EVENTS = frozenset({
    "open", "os.listdir", "os.scandir", "os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.truncate",
    "os.chmod", "os.utime", "os.link", "os.symlink", "os.chdir", "glob.glob", "sqlite3.connect", "shutil.copyfile",
    "shutil.rmtree", "shutil.move",
})  # fmt: skip


def install() -> None:
    """The `worker_process_setup_hook`: a working directory of this process's own, and the audit hook."""
    os.chdir(tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=os.environ[HOMES_ENV]))
    forbidden = tuple(os.path.abspath(path) for path in os.environ[FORBIDDEN_ENV].split(os.pathsep) if path)
    notes = os.path.join(os.environ[VIOLATIONS_ENV], f"{os.getpid()}.txt")

    def refuse(event: str, args: tuple[Any, ...]) -> None:
        if event not in _PATH_EVENTS or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.path.abspath(os.fsdecode(args[0]))
        if not any(path == root or path.startswith(root + os.sep) for root in forbidden):
            return
        descriptor = os.open(notes, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(descriptor, f"{event} {path}\n".encode())
        finally:
            os.close(descriptor)
        raise PermissionError(f"{path} is on the driver's side only ({event})")

    sys.addaudithook(refuse)
