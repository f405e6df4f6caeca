"""The package graph is a one-way ladder: every import (lazy ones and `importlib` strings too) goes down it.

    codetool (facade)     -- agent and below; its console app also mounts evaluation's commands
    evaluation            -- agent and below; nothing imports it
    agent                 -- sandbox, tools, rm, kernel
    sandbox | tools | rm  -- kernel only
    codetool_kernel       -- none of ours

Command-line modules (a `cli` package, `commands/`, `console`, `__main__`) may import library code of their
own layer and below; library code never imports a command-line module.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

KERNEL = "codetool_kernel"
ALLOWED: dict[str, set[str]] = {
    "codetool": {"agent", "sandbox", "tools", "rm", KERNEL},
    KERNEL: set(),
    "sandbox": {KERNEL},
    "tools": {KERNEL},
    "rm": {KERNEL},
    "agent": {"sandbox", "tools", "rm", KERNEL},
    "evaluation": {"agent", "sandbox", "tools", "rm", KERNEL},
}
CLI_ALSO: dict[str, set[str]] = {"codetool": {"evaluation"}}
"""What a package's command-line modules may import beyond its library code: the one console app mounts all."""


@dataclass(frozen=True)
class Violation:
    """One import that goes the wrong way."""

    module: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.why}"


def module_name(root: Path, path: Path) -> str:
    """`agent/cli/run.py` -> `agent.cli.run`; a package's `__init__.py` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_cli(module: str) -> bool:
    """Command-line modules: a `cli` package, anything under `commands`, and every `__main__`.

    The kernel has none: its `cli` module is the shared exit-code policy, a library every command line uses.
    """
    parts = module.split(".")
    return parts[0] != KERNEL and ("cli" in parts or "commands" in parts or parts[-1] in {"__main__", "console"})


def imported_names(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every module name `tree` imports, with its line: statements at any depth and `import_module("...")` strings."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and _is_import_module(node.func):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def _is_import_module(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return name in {"import_module", "__import__"}


def check_tree(root: Path, allowed: dict[str, set[str]], cli_also: dict[str, set[str]] | None = None) -> list[Violation]:
    """Every wrong-way import in the packages `allowed` names, under `root`."""
    modules = {
        module_name(root, path): path for package in allowed for path in sorted((root / package).rglob("*.py"))
    }
    violations: list[Violation] = []
    for module, path in modules.items():
        package = module.split(".")[0]
        may_import = allowed[package] | ((cli_also or {}).get(package, set()) if is_cli(module) else set())
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        seen: set[tuple[int, str]] = set()
        for line, imported in imported_names(tree, module, path.name == "__init__.py"):
            target = imported.split(".")[0]
            if target not in allowed or (line, target) in seen and target != package:
                continue
            if target != package and target not in may_import:
                seen.add((line, target))
                violations.append(Violation(module, line, imported, f"{package} may not import {target}"))
            elif not is_cli(module) and is_cli(imported) and imported in modules:
                violations.append(Violation(module, line, imported, "library code imports a command-line module"))
    return violations


def test_the_packages_import_one_way() -> None:
    violations = check_tree(ROOT, ALLOWED, CLI_ALSO)
    assert not violations, "wrong-way imports:\n" + "\n".join(map(str, violations))


def _plant(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"tools/gateway.py": "from sandbox.protocol import ApiCall\n"}, ("tools.gateway", "sandbox.protocol")),
        ({"rm/collect.py": "def f():\n    import agent.runtime\n"}, ("rm.collect", "agent.runtime")),
        ({"rm/__init__.py": "import importlib\nx = importlib.import_module('agent.llm')\n"}, ("rm", "agent.llm")),
        ({"codetool_kernel/errors.py": "from tools import registry\n"}, ("codetool_kernel.errors", "tools")),
        ({"codetool/__init__.py": "from evaluation import judge\n"}, ("codetool", "evaluation")),
        ({"agent/x.py": "from evaluation import judge\n"}, ("agent.x", "evaluation")),
        ({"agent/y.py": "import codetool\n"}, ("agent.y", "codetool")),
        ({"agent/runner/engine.py": "from ..cli.options import X\n"}, ("agent.runner.engine", "agent.cli.options")),
        ({"sandbox/__main__.py": "from tools.gateway import ToolGateway\n"}, ("sandbox.__main__", "tools.gateway")),
    ],
)
def test_a_planted_wrong_way_import_is_reported(tmp_path: Path, files: dict[str, str], expected: tuple[str, str]) -> None:
    _plant(tmp_path, {f"{package}/__init__.py": "" for package in ALLOWED})
    _plant(tmp_path, {"agent/cli/__init__.py": "", "agent/cli/options.py": "X = 1\n", "agent/runner/__init__.py": ""})
    _plant(tmp_path, files)
    found = {(v.module, v.imported) for v in check_tree(tmp_path, ALLOWED, CLI_ALSO)}
    assert expected in found


def test_right_way_imports_are_not_reported(tmp_path: Path) -> None:
    _plant(tmp_path, {f"{package}/__init__.py": "" for package in ALLOWED})
    _plant(
        tmp_path,
        {
            "agent/cli/__init__.py": "from agent.runner import engine\n",
            "agent/runner/__init__.py": "",
            "agent/runner/engine.py": "from codetool_kernel import errors\nfrom rm import client\nfrom . import layout\n",
            "evaluation/cli.py": "from agent.cli import app\n",
            "codetool/console.py": "from evaluation.cli import app\nfrom agent.cli import app as agent_app\n",
            "sandbox/base.py": "def f():\n    import codetool_kernel.errors\n",
        },
    )
    assert check_tree(tmp_path, ALLOWED, CLI_ALSO) == []
