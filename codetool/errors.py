"""The error classes every CodeTool package raises (the kernel's tree, re-exported for users)."""

from agent import QueryFailed
from codetool_kernel.errors import (
    CodeToolError,
    ConfigError,
    DataError,
    EndpointError,
    RewardModelError,
    SandboxError,
    ToolGatewayError,
)

__all__ = [
    "CodeToolError",
    "ConfigError",
    "DataError",
    "EndpointError",
    "QueryFailed",
    "RewardModelError",
    "SandboxError",
    "ToolGatewayError",
]
