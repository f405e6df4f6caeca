"""The concurrency limits a run works under: no bound below the run's own concurrency unless asked for.

A limit the user set (config file, environment or flag) stays as set. The others follow the
run: LLM requests and tool calls `concurrency × n` (every candidate of every query in flight at
once), PRM requests `concurrency` (one request scores a step's candidates). The sandbox pool
keeps the backend's default (a count of warm processes, sized to the machine), except where each
query takes a warm worker of its own (`Sandbox.pool_per_query`: the docker backend's container
per query): there it follows `concurrency`, and the backend learns how many queries the run
holds, so that it starts no container ahead that no query would take.
"""

from __future__ import annotations

import inspect
from typing import Any

from agent.config import AgentConfig
from codetool_kernel.errors import ConfigError
from sandbox.base import BACKENDS


def follow_concurrency(config: AgentConfig, concurrency: int, queries: int | None = None) -> tuple[AgentConfig, dict[str, Any]]:
    """`config` with each limit the user left unset following `concurrency`, and every limit in force.

    `queries`: how many queries the run holds, when known. The limits are JSON-ready:
    `{name: {"value": ..., "source": "set" | "follows" | "backend default"}}`.
    """
    candidates = concurrency * config.search.n
    limits: dict[str, Any] = {"queries": {"value": concurrency, "source": "set"}}
    sections: dict[str, Any] = {}
    for name, section, key, follows in (
        ("llm_requests", "llm", "max_concurrency", candidates),
        ("prm_requests", "rm", "max_connections", concurrency),
        ("tool_calls", "gateway", "concurrency", candidates),
    ):
        current = getattr(config, section)
        if key in current.model_fields_set:
            limits[name] = {"value": getattr(current, key), "source": "set"}
        else:
            sections[section] = current.model_copy(update={key: follows})
            limits[name] = {"value": follows, "source": "follows"}
    options = dict(config.sandbox.options)
    per_query = _pool_per_query(config.sandbox.backend, options)
    if "pool_size" in options:
        limits["sandbox_pool"] = {"value": options["pool_size"], "source": "set"}
    elif per_query:
        options["pool_size"] = min(concurrency, queries or concurrency)
        limits["sandbox_pool"] = {"value": options["pool_size"], "source": "follows"}
    else:
        limits["sandbox_pool"] = {"value": _default_pool(config.sandbox.backend), "source": "backend default"}
    if per_query and queries is not None and "sessions" not in options:
        options["sessions"] = queries
    if options != config.sandbox.options:
        sections["sandbox"] = config.sandbox.model_copy(update={"options": options})
    return config.model_copy(update=sections), limits


def limits_line(limits: dict[str, Any]) -> str:
    """One line naming every limit, e.g. `limits: queries 32, llm_requests 64 (follows), ...`."""
    parts = [
        f"{name} {limit['value']}" + ("" if name == "queries" else f" ({limit['source']})")
        for name, limit in limits.items()
    ]
    return "limits: " + ", ".join(parts)


def _pool_per_query(backend: str, options: dict[str, Any]) -> bool:
    try:
        return BACKENDS.get(backend).pool_per_query(options)
    except ConfigError:  # an unknown backend is reported when the sandbox is built
        return False


def _default_pool(backend: str) -> int | None:
    try:
        parameter = inspect.signature(BACKENDS.get(backend)).parameters.get("pool_size")
    except ConfigError:  # an unknown backend is reported when the sandbox is built
        return None
    return parameter.default if parameter is not None and parameter.default is not inspect.Parameter.empty else None
