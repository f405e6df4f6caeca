"""What the escape suites share (their sandboxes are `conftest.escape_variant`'s)."""

from __future__ import annotations

from sandbox import Cell, ExecutionResult, Sandbox

RESTRICTED_REFUSALS = {"ImportError", "NameError", "AttributeError", "SyntaxError", "TypeError", "KeyError"}
"""How the restricted backend says no: at compile time or at the guarded import/attribute/call."""


async def assert_still_serving(sandbox: Sandbox) -> None:
    after = await sandbox.execute(Cell(code="print('still serving')"))
    assert after.ok and after.stdout == "still serving\n", after.error


def one_line(result: ExecutionResult) -> bool:
    return bool(result.error) and "\n" not in str(result.error)
