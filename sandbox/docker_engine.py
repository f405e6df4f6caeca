"""The connection to the Docker engine, with the docker SDK's errors translated into ours.

The SDK is blocking: callers on an event loop run these functions in a thread.
"""

from __future__ import annotations

import docker
from docker.errors import DockerException

from codetool_kernel.errors import SandboxError
from codetool_kernel.text import one_line

DEFAULT_TIMEOUT_S = 120.0


def connect(timeout_s: float = DEFAULT_TIMEOUT_S) -> docker.DockerClient:
    """A client for the engine named by the environment (DOCKER_HOST, else the local socket)."""
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
    except DockerException as exc:
        raise SandboxError(f"the Docker engine is not reachable: {docker_error(exc)}") from None
    return client


def docker_error(exc: BaseException) -> str:
    """A docker error as one short line (their messages hold HTTP details and newlines)."""
    return one_line(getattr(exc, "explanation", None) or exc)
