"""Reading an OpenAPI document from a file or an http(s) URL, with every `$ref` resolved.

External `$ref`s (relative files, URLs) are fetched first, each under the same bounds as the
spec itself (size, time, document count), then `jsonref` resolves all references offline from
those documents. A spec read over HTTP may only reference http(s) documents, never local files.
Recursive schemas come out as cyclic object graphs: readers walk them with a depth cap.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.request import url2pathname

import aiohttp
import jsonref
import yaml

from codetool_kernel.errors import DataError

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
MAX_DOCUMENTS = 32
"""The spec and the documents it references, together."""
FETCH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OpenApiDocument:
    """A parsed OpenAPI 3 document, references resolved."""

    source: str
    """The path or URL as given (what error lines name)."""
    uri: str
    """Its absolute `file://` or `http(s)://` URI (relative server URLs resolve against it)."""
    content: Mapping[str, Any]


async def load_document(source: str) -> OpenApiDocument:
    """Read, check and resolve the OpenAPI document at `source` (a path or an http(s) URL); one-line DataError."""
    root = _absolute_uri(source)
    documents: dict[str, Any] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as http:
        pending = [root]
        while pending:
            uri = pending.pop()
            if uri in documents:
                continue
            if len(documents) >= MAX_DOCUMENTS:
                raise DataError(f"{source}: references more than {MAX_DOCUMENTS} documents")
            if _is_file(uri) and not _is_file(root):
                raise DataError(f"{source}: a spec read over HTTP may not $ref the local file {uri}")
            documents[uri] = await _read(uri, http, source)
            if uri == root:
                check_openapi(documents[uri], source)
            pending += [ref for ref in await asyncio.to_thread(_external_refs, documents[uri], uri) if ref not in documents]
    content = await asyncio.to_thread(_resolve, documents, root, source)
    return OpenApiDocument(source=source, uri=root, content=content)


def check_openapi(document: Any, source: str) -> None:
    """Raise a one-line DataError unless `document` is an OpenAPI 3.0/3.1 document with paths."""
    if not isinstance(document, Mapping):
        raise DataError(f"{source}: not an OpenAPI document (the top level is a {type(document).__name__}, not a mapping)")
    if "swagger" in document:
        raise DataError(f"{source}: a Swagger {document['swagger']} spec, not OpenAPI 3 (convert it to OpenAPI 3 first)")
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith(("3.0", "3.1")):
        raise DataError(f"{source}: not OpenAPI 3.0/3.1 (its `openapi` field is {version!r})")
    paths = document.get("paths")
    if not isinstance(paths, Mapping) or not paths:
        raise DataError(f"{source}: no paths (the spec declares no endpoints)")


def _absolute_uri(source: str) -> str:
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return urldefrag(source).url
    if scheme == "file":
        return source
    return Path(source).expanduser().resolve().as_uri()


def _is_file(uri: str) -> bool:
    return urlsplit(uri).scheme == "file"


async def _read(uri: str, http: aiohttp.ClientSession, source: str) -> Any:
    where = source if uri == _absolute_uri(source) else f"{source}: $ref {uri}"
    if _is_file(uri):
        raw = await asyncio.to_thread(_read_file, Path(url2pathname(urlsplit(uri).path)), where)
    elif urlsplit(uri).scheme in ("http", "https"):
        raw = await _fetch(uri, http, where)
    else:
        raise DataError(f"{where}: only files and http(s) URLs can be read")
    return await asyncio.to_thread(parse_text, raw, where)


def _read_file(path: Path, where: str) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise DataError(f"{where}: no such file") from None
    except OSError as exc:
        raise DataError(f"{where}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DataError(f"{where}: larger than {MAX_DOCUMENT_BYTES} bytes")
    return raw


async def _fetch(uri: str, http: aiohttp.ClientSession, where: str) -> bytes:
    try:
        async with http.get(uri, allow_redirects=True, max_redirects=5) as response:
            if response.status != 200:
                raise DataError(f"{where}: HTTP {response.status} {response.reason or ''}".rstrip())
            raw = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                raw += chunk
                if len(raw) > MAX_DOCUMENT_BYTES:
                    break
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"{where}: cannot fetch ({reason})") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DataError(f"{where}: larger than {MAX_DOCUMENT_BYTES} bytes")
    return bytes(raw)


def parse_text(raw: bytes, where: str) -> Any:
    """A JSON or YAML document's data (mapping keys made strings, as YAML reads `200:` as a number)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{where}: not UTF-8 text") from None
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise DataError(f"{where}: bad JSON ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise DataError(f"{where}: bad YAML{at} ({problem})") from None
    try:
        return _string_keys(data)
    except RecursionError:
        raise DataError(f"{where}: bad YAML (a recursive alias)") from None


def _string_keys(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(key): _string_keys(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_string_keys(item) for item in data]
    return data


def _external_refs(document: Any, uri: str) -> list[str]:
    """The other documents `document` references, as absolute URIs without fragment."""
    found: list[str] = []
    pending = [document]
    while pending:
        node = pending.pop()
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target = urldefrag(urljoin(uri, ref)).url
                if target and target != uri and target not in found:
                    found.append(target)
            pending += list(node.values())
        elif isinstance(node, list):
            pending += node
    return found


def _resolve(documents: Mapping[str, Any], root: str, source: str) -> Mapping[str, Any]:
    def loader(uri: str) -> Any:
        return documents[uri]

    try:
        return jsonref.replace_refs(
            documents[root], base_uri=root, loader=loader, merge_props=True, proxies=False, lazy_load=False
        )
    except jsonref.JsonRefError as exc:
        reference = exc.reference.get("$ref") if isinstance(exc.reference, Mapping) else exc.reference
        cause = type(exc.cause).__name__ if exc.cause is not None else "unresolvable"
        raise DataError(f"{source}: cannot resolve $ref {reference!r} ({cause})") from None
    except RecursionError:
        raise DataError(f"{source}: nested too deeply to resolve") from None
