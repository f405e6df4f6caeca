"""One exception tree for the whole framework.

Third-party errors (aiohttp, openai, docker, OS errors) are translated into these at the
boundary where they happen, so callers catch `CodeToolError` and get a one-line message.
Errors raised by *generated code* inside a sandbox are not exceptions on the host: they are
recorded in an `ExecutionResult`.
"""


class CodeToolError(Exception):
    """Root of every error CodeTool raises on purpose."""


class ConfigError(CodeToolError):
    """A setting is missing, malformed or inconsistent."""


class DataError(CodeToolError):
    """An input file (queries, spec, cache, trajectory) is missing or malformed."""


class EndpointError(CodeToolError):
    """An LLM endpoint is unreachable or answered something unusable."""


class SandboxError(CodeToolError):
    """The sandbox infrastructure failed (not the code it was running)."""


class ToolGatewayError(CodeToolError):
    """The tool gateway could not be started or configured."""


class RewardModelError(CodeToolError):
    """The process reward model is unreachable, misconfigured or answered nonsense."""
