"""One writer per run directory: an exclusive lock file that names its holder.

`RUN_DIR/.lock` is held with `fcntl.flock` for as long as the writer runs; the kernel releases
it when the process ends however it ends (kill -9 included), so a lock left by a dead process
is simply taken over. The file also records who holds it (host, pid, start), for the one line
a second writer is refused with. A writer that ends removes the file; one that takes the lock
checks that the file it locked is still the one at the path (another may have just removed it).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from codetool_kernel.errors import DataError

LOCK_NAME = ".lock"


class DirectoryBusy(DataError):
    """Another process is writing the directory."""


class DirectoryLock:
    """`with DirectoryLock(run_dir, command="agent run"):` while writing `run_dir`.

    `took_over` is the record of an earlier holder that died without releasing (None when there was none).
    """

    def __init__(self, directory: Path, *, command: str) -> None:
        self.path = Path(directory) / LOCK_NAME
        self.command = command
        self.took_over: dict[str, object] | None = None
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_record(fd)
                os.close(fd)
                raise DirectoryBusy(
                    f"{self.path.parent} is in use by {_describe(holder)}; wait for it to end or stop it first"
                ) from None
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the holder removed the file between our open and our lock: lock the new one
        earlier = _read_record(fd)
        self.took_over = earlier or None
        record = {
            "command": self.command,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still locked: nobody can hold the file we remove
        os.close(fd)  # closing releases the flock

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino)


def _read_record(fd: int) -> dict[str, object]:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _describe(holder: dict[str, object]) -> str:
    if not holder:
        return "another process"
    command = holder.get("command") or "another process"
    return f"{command} (pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')})"
