"""The `process` backend: plain Python in a locked-down, freshly forked child per execution.

The code runs unrestricted by RestrictedPython; the operating system is the boundary, in
layers, each one reported at start-up (`ProcessSandbox.layers`), strongest first:

* `filesystem view` and `pid namespace`: the fork server runs inside bubblewrap
  (`sandbox.bubblewrap`): read-only Python and runner, nothing else of the host, no network;
* `unprivileged user` and `process limit`: started as root, each child runs as a uid of its
  own, so RLIMIT_NPROC holds and whatever it started is killed by uid afterwards;
* `private working directory` and `network namespace`: each child's own tmpfs and, without
  bubblewrap, its own empty network namespace (user namespaces);
* `rlimits` (address space, CPU seconds, file size, open files), a scrubbed environment, the
  child's process group killed on overrun;
* `audit hook` (PEP 578): refuses process creation, sockets, ctypes, signals, and files
  outside the working directory; the last layer, not a boundary on its own.

As on every backend, the code runs in a child of a supervising runner process that alone
holds the host's channel, under a seccomp filter that lets it signal no process but itself
(`sandbox.runner.worker`, `sandbox.runner.kernel`).

A layer the OS refuses is logged once, at start, and the rest still apply. The `restricted`
backend (`sandbox.restricted`) is this backend with the runner in RestrictedPython mode.
"""

from __future__ import annotations

import importlib.util
import os
import random
from typing import ClassVar

from structlog import get_logger

from codetool_kernel.errors import ConfigError
from codetool_kernel.protocol import SandboxLimits
from sandbox.base import register_backend
from sandbox.bubblewrap import SANDBOX_TMP, bwrap_argv, bwrap_executable, bwrap_refusal, sandbox_python
from sandbox.forked import ForkedSandbox
from sandbox.forkserver import Launch, ServerDirs
from sandbox.runner.confine import LAYER_NETWORK, LAYER_UID, LAYER_WORKDIR

DEFAULT_UID_BASE = 1_500_000_000
"""Children's uids start here: far above any account or the usual subordinate-uid ranges."""
_UID_BLOCKS = 10_000
"""Without a pid namespace, two servers must not share uids (each kills its uids' leftovers)."""
_UIDS_PER_SLOT = 4
ON = "on"
LAYER_FILESYSTEM = "filesystem view"
LAYER_PID = "pid namespace"
LAYER_NPROC = "process limit"
LAYER_RLIMITS = "rlimits"
LAYER_HOOK = "audit hook"

log = get_logger(__name__)


def _hidden_from_other_users(path: str) -> str | None:
    """The first directory on the way to `path` that other users cannot enter, if any."""
    current = "/"
    for part in path.strip("/").split("/"):
        current = os.path.join(current, part)
        try:
            if not os.stat(current).st_mode & 0o001:
                return current
        except OSError:
            return current
    return None


def _package_dirs(names: tuple[str, ...]) -> list[str]:
    """Where each named package is installed (its directory)."""
    dirs = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"the sandbox runner needs the package {name!r}, which is not installed")
        dirs.append(os.path.realpath(next(iter(spec.submodule_search_locations))))
    return dirs


@register_backend("process")
class ProcessSandbox(ForkedSandbox):
    """Runs plain Python cells in fresh, confined children of one warm runner."""

    runner_mode: ClassVar[str] = "plain"
    """The runner's engine (`restricted` reuses every layer here with RestrictedPython on top)."""
    runner_packages: ClassVar[tuple[str, ...]] = ()
    """Packages outside the standard library the runner imports, shown to it read-only beside the runner."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        pool_size: int = 4,
        start_timeout_s: float = 30.0,
        bubblewrap: bool = True,
        audit_hook: bool = True,
        uid_base: int = DEFAULT_UID_BASE,
        workdir_mb: int = 64,
    ) -> None:
        super().__init__(limits, self.runner_mode, pool_size=pool_size, start_timeout_s=start_timeout_s, launcher=self._launch)
        self.use_bubblewrap = bubblewrap
        self.audit_hook = audit_hook
        self.workdir_mb = workdir_mb
        self.uid_count = _UIDS_PER_SLOT * pool_size
        self.uid_first = uid_base + random.randrange(_UID_BLOCKS) * self.uid_count
        self.layers: dict[str, str] = {}
        """Each isolation layer: `on`, or `off: why` (filled by `start`)."""
        self._bwrap: str | None = None
        self._bwrap_refusal = ""

    async def start(self) -> None:
        bwrap = bwrap_executable() if self.use_bubblewrap else None
        if not self.use_bubblewrap:
            self._bwrap_refusal = "turned off (bubblewrap=False)"
        elif bwrap is None:
            self._bwrap_refusal = "bubblewrap is not installed (apt-get install bubblewrap)"
        else:
            self._bwrap_refusal = await bwrap_refusal(bwrap) or ""
        self._bwrap = None if self._bwrap_refusal else bwrap
        await super().start()
        self.layers = self._layers(self.server.ready_message.get("layers") or {})
        off = {name: state for name, state in self.layers.items() if state != ON}
        active = [name for name, state in self.layers.items() if state == ON]
        if off:
            log.warning(f"{self.name} sandbox started with some isolation layers off", active=active, off=off)
        else:
            log.info(f"{self.name} sandbox started with every isolation layer", active=active)
        hidden = _hidden_from_other_users(sandbox_python()[1])
        if self._bwrap is None and self.layers[LAYER_UID] == ON and hidden and self.runner_mode == "plain":
            log.warning(
                "without bubblewrap the children's uid cannot read the Python installation: "
                "only the modules the runner loaded before forking can be imported",
                python=sandbox_python()[1], unreadable=hidden,
            )  # fmt: skip

    def _launch(self, dirs: ServerDirs, listen_fd: int) -> Launch:
        runner = ["-E", "-s", "-S", "-m", "runner", "--mode", self.runner_mode, "--listen-fd", str(listen_fd)]
        runner += ["--spares", str(self.pool_size), "--private-workdir", "--workdir-mb", str(self.workdir_mb)]
        if os.geteuid() == 0:
            runner += ["--uid-base", str(self.uid_first), "--uid-count", str(self.uid_count)]
        if self.audit_hook:
            runner.append("--audit-hook")
        packages = _package_dirs(self.runner_packages)
        if self._bwrap is not None:
            view = bwrap_argv(self._bwrap, tmp_mb=self.workdir_mb, packages=packages)
            argv = [*view, *runner, "--workdir", SANDBOX_TMP, "--own-pid-namespace"]
            return Launch(argv, dirs.home, pid_namespace=True)
        for package in packages:
            link = os.path.join(dirs.home, os.path.basename(package))
            if not os.path.lexists(link):
                os.symlink(package, link, target_is_directory=True)
        return Launch([sandbox_python()[0], *runner, "--workdir", dirs.work, "--unshare-net"], dirs.home)

    def _layers(self, reported: dict[str, str]) -> dict[str, str]:
        bwrap = ON if self._bwrap is not None else f"off: {self._bwrap_refusal}"
        uid = reported.get(LAYER_UID, "off: not started as root") if os.geteuid() == 0 else "off: not started as root"
        return {
            LAYER_FILESYSTEM: bwrap,
            LAYER_PID: bwrap,
            LAYER_NETWORK: ON if self._bwrap is not None else reported.get(LAYER_NETWORK, "off: not reported"),
            LAYER_UID: uid,
            LAYER_NPROC: ON if uid == ON else "off: needs a uid of its own (start as root)",
            LAYER_WORKDIR: reported.get(LAYER_WORKDIR, "off: not reported"),
            LAYER_RLIMITS: ON,
            LAYER_HOOK: ON if self.audit_hook else "off: turned off (audit_hook=False)",
        }
