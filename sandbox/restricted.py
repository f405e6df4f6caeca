"""The `restricted` backend: RestrictedPython code in a forked, rlimited child per execution.

Why a fork server: a warm runner process (RestrictedPython, the allowed modules and the
guards already built) forks one child per execution. The child starts from that clean
state, so no execution sees another's, and starting it costs a fork instead of an
interpreter start plus imports (see `bench/sandbox_latency.py` for the figures). The
children are bounded by `pool_size` (executions at once), rlimits set in the child
(address space, CPU seconds, file size, open files), the runner's own time alarms and
the host's hard deadline, which kills the child's process group.
"""

from __future__ import annotations

from sandbox.base import register_backend
from sandbox.forked import ForkedSandbox
from sandbox.protocol import SandboxLimits


@register_backend("restricted")
class RestrictedSandbox(ForkedSandbox):
    """Runs cells under RestrictedPython in fresh forked children of one warm runner."""

    def __init__(self, limits: SandboxLimits | None = None, *, pool_size: int = 4, start_timeout_s: float = 30.0) -> None:
        super().__init__(limits, "restricted", pool_size=pool_size, start_timeout_s=start_timeout_s)
