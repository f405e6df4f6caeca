"""Shared kernel of the CodeTool framework: the error tree, file helpers and logging set-up.

The framework itself lives in the sibling packages `agent`, `sandbox`, `tools`, `rm` and
`evaluation`; this package holds only what all of them need.
"""

from codetool_kernel.errors import (
    CodeToolError,
    ConfigError,
    DataError,
    EndpointError,
    RewardModelError,
    SandboxError,
    ToolGatewayError,
)

__version__ = "0.1.0"

__all__ = [
    "CodeToolError",
    "ConfigError",
    "DataError",
    "EndpointError",
    "RewardModelError",
    "SandboxError",
    "ToolGatewayError",
    "__version__",
]
