"""The `restricted` backend: RestrictedPython code, under every OS layer of `process` too.

RestrictedPython is the language layer (`sandbox.runner.policy`): the code reaches
attributes, imports and builtins only through guards, and gets curated views of a few
modules. It is never the only layer: the runner is the `process` backend's fork server in
`restricted` mode, so each execution also runs in a fresh forked child with a read-only
filesystem view and no network (bubblewrap), its own unprivileged uid when started as
root, rlimits, a private working directory, the PEP 578 audit hook, and a parent-death
signal. The layers in force are reported at start (`layers`), those that are off in one
warning line; see `sandbox.process` for each layer and its fallback.
"""

from __future__ import annotations

from sandbox.base import register_backend
from sandbox.process import ON, ProcessSandbox

LAYER_LANGUAGE = "language policy"


@register_backend("restricted")
class RestrictedSandbox(ProcessSandbox):
    """Runs cells under RestrictedPython in fresh, confined children of one warm runner."""

    runner_mode = "restricted"
    runner_packages = ("RestrictedPython",)

    def _layers(self, reported: dict[str, str]) -> dict[str, str]:
        return {LAYER_LANGUAGE: ON, **super()._layers(reported)}
