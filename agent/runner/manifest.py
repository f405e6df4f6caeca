"""`run.json`: what a run is (configuration, versions, seeds, queries) and how far it got."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from agent.config import LEGACY_BEAM_MODE, AgentConfig, SearchConfig, config_summary
from agent.policy import choose_policy, policy_model_name
from agent.runner.queries import group_of
from agent.runner.settings import RunSettings
from codetool_kernel.errors import ConfigError
from tools.toolset import Query

MANIFEST_FORMAT = 1
_PACKAGES = ("codetool", "openai", "aiohttp", "pydantic", "RestrictedPython", "ray", "vllm", "transformers", "torch")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    """Python, platform and the versions of the packages that shape a run's results."""
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for package in _PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def identity(settings: RunSettings, config: AgentConfig) -> dict[str, Any]:
    """What must stay the same for a run to be resumed: data, benchmark, model, search settings and prompts."""
    found = {
        "benchmark": settings.benchmark,
        "data": str(settings.data.resolve()),
        "filtered": settings.filtered,
        "model": policy_model_name(config.llm, settings.endpoints),
        "search": search_identity(config.search),
    }
    prompts = config.prompts.model_dump(exclude_none=True)
    return {**found, "prompts": prompts} if prompts else found


def search_identity(search: SearchConfig) -> dict[str, Any]:
    """The search settings in the form runs recorded before strategies and rules were apart.

    Greedy search records no strategy and beam search with the codetool rule records mode `beam`,
    so that run directories from then resume, and one search is always recorded one way.
    """
    data = search.model_dump(mode="json", exclude={"strategy"})
    data["mode"] = LEGACY_BEAM_MODE if search.label == LEGACY_BEAM_MODE else search.selection_rule
    if search.search_strategy != "greedy" and search.label != LEGACY_BEAM_MODE:
        data["strategy"] = search.search_strategy
    return data


def query_entries(settings: RunSettings, queries: list[Query]) -> list[dict[str, Any]]:
    return [
        {"query_id": q.query_id, "group": group_of(q, settings), "gold_solution": list(q.gold_solution)}
        for q in queries
    ]


def open_manifest(
    existing: dict[str, Any] | None, settings: RunSettings, config: AgentConfig, queries: list[Query]
) -> dict[str, Any]:
    """The manifest for a new session: a fresh one, or `existing` extended after checking it matches."""
    wanted = identity(settings, config)
    attempt = len((existing or {}).get("sessions", [])) + 1
    session = {
        "attempt": attempt, "started_at": now(), "executor": settings.executor, "argv": sys.argv[1:],
        "status": "running", "pid": os.getpid(), "host": socket.gethostname(),
    }  # fmt: skip
    entries = query_entries(settings, queries)
    if existing is None:
        return {
            "format": MANIFEST_FORMAT,
            "run_id": uuid.uuid4().hex[:12],
            "created_at": session["started_at"],
            "status": "running",
            "identity": wanted,
            "benchmark": settings.benchmark,
            "groups": sorted({entry["group"] for entry in entries}),
            "config": config_summary(config),
            "settings": settings.model_dump(mode="json"),
            "endpoints": _endpoints(settings, config),
            "seeds": {"search": config.search.seed},
            "versions": versions(),
            "queries": entries,
            "sessions": [session],
        }
    if existing.get("identity") != wanted:
        raise ConfigError(_mismatch(settings, existing.get("identity") or {}, wanted))
    known = {entry["query_id"] for entry in existing.get("queries", [])}
    merged = existing.get("queries", []) + [entry for entry in entries if entry["query_id"] not in known]
    return {
        **existing,
        "status": "running",
        "groups": sorted({entry["group"] for entry in merged}),
        "config": config_summary(config),
        "settings": settings.model_dump(mode="json"),
        "endpoints": _endpoints(settings, config),
        "versions": versions(),
        "queries": merged,
        "sessions": [*map(_ended, existing.get("sessions", [])), session],
    }


def _endpoints(settings: RunSettings, config: AgentConfig) -> list[str]:
    """The policy endpoints of the run (none for a model run in this process)."""
    if choose_policy(config.llm, settings.endpoints).backend != "openai":
        return []
    return list(settings.endpoints) or [config.llm.base_url or ""]


def _ended(session: dict[str, Any]) -> dict[str, Any]:
    """An earlier session; one still `running` died without recording its end (its lock was free)."""
    return {**session, "status": "killed"} if session.get("status") == "running" else session


def close_session(manifest: dict[str, Any], status: str, summary: dict[str, Any]) -> dict[str, Any]:
    """`manifest` with its last session ended as `status` ("completed", "interrupted", "aborted")."""
    sessions = list(manifest.get("sessions", []))
    if sessions:
        sessions[-1] = {**sessions[-1], "ended_at": now(), "status": status, "summary": summary}
    return {**manifest, "status": status, "summary": summary, "sessions": sessions}


def _mismatch(settings: RunSettings, old: dict[str, Any], new: dict[str, Any]) -> str:
    differing = sorted(key for key in new.keys() | old.keys() if old.get(key) != new.get(key))
    details = ", ".join(f"{key} was {old.get(key)!r}" for key in differing if key not in ("search", "prompts"))
    if "prompts" in differing:
        details = ", ".join(filter(None, [details, "the prompt templates differed"]))
    if "search" in differing:
        details = ", ".join(filter(None, [details, f"search settings were {old.get('search')}"]))
    return (
        f"{settings.out} holds a run with other settings ({details}); "
        "resume it with the same settings or choose another --out"
    )
