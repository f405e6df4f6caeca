"""One exception tree for the whole framework.

Third-party errors (aiohttp, openai, docker, OS errors) are translated into these at the
boundary where they happen, so callers catch `CodeToolError` and get a one-line message.
Errors raised by *generated code* inside a sandbox are not exceptions on the host: they are
recorded in an `ExecutionResult`.
"""


class CodeToolError(Exception):
    """Root of every error CodeTool raises on purpose."""

    exit_code = 1
    """The command's exit status when this error ends it (see `codetool_kernel.cli`)."""


class ConfigError(CodeToolError):
    """A setting is missing, malformed or inconsistent."""

    exit_code = 2


class DataError(CodeToolError):
    """An input file (queries, spec, cache, trajectory) is missing or malformed."""

    exit_code = 2


class EndpointError(CodeToolError):
    """An LLM endpoint is unreachable or answered something unusable."""


class SandboxError(CodeToolError):
    """The sandbox infrastructure failed (not the code it was running)."""


class ToolGatewayError(CodeToolError):
    """The tool gateway could not be started or configured."""


class RewardModelError(CodeToolError):
    """The process reward model is unreachable, misconfigured or answered nonsense."""
