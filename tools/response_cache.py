"""StableToolBench's response cache, read (and optionally written) in its official layout.

Layout: `<root>/<category>/<tool>_for_<category>/<api>.json`, names standardised the way the
official virtual server does it (so a downloaded `tool_response_cache` folder works as is);
each file is a JSON object keyed by `str(tool_input)` (the Python repr of the input dict)
whose values are answers `{"error": "...", "response": ...}`.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from codetool_kernel.errors import DataError
from codetool_kernel.files import write_json_atomic

log = structlog.get_logger(__name__)

# The official standardisation keeps `^` as well (a quirk of its character class); kept for identical paths.
_NOT_NAME_CHAR = re.compile(r"[^\u4e00-\u9fa5^a-zA-Z0-9_]")
_RESERVED_API_NAMES = frozenset({"from", "class", "return", "false", "true", "id", "and"})


def standardize(name: str) -> str:
    """A tool or API name as the official server spells it on disk (`Transfermarkt search`: `transfermarkt_search`)."""
    text = re.sub(r"_+", "_", _NOT_NAME_CHAR.sub("_", name)).lower().strip("_")
    if text[:1].isdigit():
        text = "get_" + text
    return text


def standardize_category(category: str) -> str:
    """A category as the official server spells it on disk (`News, Media` -> `News_Media`)."""
    text = category.replace(" ", "_").replace(",", "_").replace("/", "_")
    while "__" in text:
        text = text.replace("__", "_")
    return text


def cache_file_parts(category: str, tool_name: str, api_name: str) -> tuple[str, str, str]:
    """(category dir, tool dir, api file name) of an API in the official layout."""
    std_category = standardize_category(category)
    suffix = f"_for_{std_category}"
    tool_dir = tool_name if tool_name.endswith(suffix) else standardize(tool_name) + suffix
    api = standardize(api_name)
    api = "is_" + api if api in _RESERVED_API_NAMES else api
    tool_core = standardize(tool_dir.removesuffix(suffix))
    api = api.removesuffix(f"_for_{tool_core}")
    return std_category, tool_dir, api + ".json"


def cache_key(tool_input: Mapping[str, Any]) -> str:
    """The official key of an input: `str()` of the input dict."""
    return str(dict(tool_input))


def parse_literal(text: str) -> Any:
    """`text` parsed as JSON, else as a Python literal (never `eval`); raises ValueError if neither."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"neither JSON nor a Python literal ({type(exc).__name__})") from None


def adapt_answer(answer: Any) -> dict[str, Any]:
    """CodeTool's adaptation: a `response` string holding a dict or list comes back parsed."""
    if not isinstance(answer, Mapping):
        return {"error": "", "response": answer}
    adapted = dict(answer)
    response = adapted.get("response")
    if isinstance(response, str):
        try:
            parsed = parse_literal(response)
        except ValueError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            adapted["response"] = parsed
    return adapted


@dataclass
class _CachedFile:
    stamp: tuple[int, int]
    entries: dict[str, Any]
    canonical: dict[str, str]
    """Order-insensitive form of each key -> the key, to find `{'b': 1, 'a': 2}` under `{'a': 2, 'b': 1}`."""


class ResponseCache:
    """Looks answers up in a cache folder; keeps the most recently used files parsed in memory."""

    def __init__(self, root: str | Path, *, max_files_in_memory: int = 256) -> None:
        self.root = Path(root)
        self._files: OrderedDict[Path, _CachedFile] = OrderedDict()
        self._max_files = max_files_in_memory
        self._reported: set[tuple[Path, tuple[int, int]]] = set()
        self._write_lock = asyncio.Lock()
        self._memory_lock = threading.Lock()  # files are parsed in worker threads

    def path_for(self, category: str, tool_name: str, api_name: str) -> Path:
        """Where an API's answers live; raises DataError for names that would leave the cache root."""
        parts = cache_file_parts(category, tool_name, api_name)
        for part in parts:
            if part in ("", ".", "..", ".json") or any(bad in part for bad in ("/", "\\", "\0")):
                raise DataError(
                    f"refusing cache path component {part!r} (from {category!r}/{tool_name!r}/{api_name!r})"
                )
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise DataError(f"refusing cache path outside {self.root}: {path}")
        return path

    async def lookup(self, category: str, tool_name: str, api_name: str, tool_input: Mapping[str, Any]) -> Any | None:
        """The cached answer for `tool_input`, or None on a miss (a corrupt file is a miss)."""
        cached = await asyncio.to_thread(self._load, self.path_for(category, tool_name, api_name))
        if cached is None:
            return None
        key = cache_key(tool_input)
        if key in cached.entries:
            return cached.entries[key]
        original = cached.canonical.get(_canonical(dict(tool_input)))
        return cached.entries.get(original) if original is not None else None

    async def examples(self, category: str, tool_name: str, api_name: str, limit: int = 3) -> list[tuple[str, Any]]:
        """Up to `limit` cached (input key, answer) pairs of an API, e.g. to show an LLM simulator."""
        cached = await asyncio.to_thread(self._load, self.path_for(category, tool_name, api_name))
        return list(cached.entries.items())[:limit] if cached else []

    async def store(
        self, category: str, tool_name: str, api_name: str, tool_input: Mapping[str, Any], answer: Any
    ) -> None:
        """Add one answer to the API's file (atomic rewrite; concurrent stores are serialised)."""
        path = self.path_for(category, tool_name, api_name)
        async with self._write_lock:
            await asyncio.to_thread(self._store_sync, path, cache_key(tool_input), answer)

    def _store_sync(self, path: Path, key: str, answer: Any) -> None:
        cached = self._load(path)
        entries = dict(cached.entries) if cached else {}
        entries[key] = answer
        write_json_atomic(path, entries, indent=1)
        with self._memory_lock:
            self._files.pop(path, None)

    def _load(self, path: Path) -> _CachedFile | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._memory_lock:
            cached = self._files.get(path)
            if cached is not None and cached.stamp == stamp:
                self._files.move_to_end(path)
                return cached
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(entries, dict):
                raise ValueError(f"top level is {type(entries).__name__}, not an object")
        except (OSError, ValueError) as exc:
            with self._memory_lock:
                first_report = (path, stamp) not in self._reported
                self._reported.add((path, stamp))
            if first_report:
                log.warning("corrupt response cache file, treated as a miss", path=str(path), reason=str(exc)[:200])
            return None
        cached = _CachedFile(stamp, entries, _canonical_index(entries))
        with self._memory_lock:
            self._files[path] = cached
            if len(self._files) > self._max_files:
                self._files.popitem(last=False)
        return cached


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _canonical_index(entries: Mapping[str, Any]) -> dict[str, str]:
    index: dict[str, str] = {}
    for key in entries:
        try:
            parsed = ast.literal_eval(key)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(parsed, dict):
            index.setdefault(_canonical(parsed), key)
    return index
