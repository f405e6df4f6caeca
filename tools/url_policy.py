"""The gateway's allow-list: which URLs sandboxed code may call, and where each one really goes.

A URL passes only when its scheme, host and port equal a route prefix's and its path, after
resolving `.`/`..` segments (percent-encoded ones too), lies at or below the prefix path on a
segment boundary. So `https://api.themoviedb.org/3.evil.com`, `https://api.themoviedb.org@evil.com/3`
and `https://api.themoviedb.org/3/../admin` are all refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from tools.toolset import Route

_DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlRefused(ValueError):
    """The URL is malformed or outside every allowed prefix; the message is one line for the model."""


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int
    path: str
    """Normalised path without a trailing slash ("" for the root)."""
    query: str


@dataclass(frozen=True)
class Target:
    """Where an allowed call goes: its route and the upstream URL (query string included)."""

    route: Route
    url: str


def resolve_target(url: str, routes: Sequence[Route]) -> Target:
    """The route serving `url` and the rewritten upstream URL; raises `UrlRefused` otherwise."""
    allowed = ", ".join(route.prefix for route in routes) or "none"
    try:
        origin = _parse(url)
    except UrlRefused as exc:
        raise UrlRefused(f"{exc}; allowed URL prefixes: {allowed}") from None
    for route in routes:
        prefix = _parse(route.prefix)
        if (origin.scheme, origin.host, origin.port) != (prefix.scheme, prefix.host, prefix.port):
            continue
        if origin.path != prefix.path and not origin.path.startswith(prefix.path + "/"):
            continue
        rest = origin.path[len(prefix.path) :]
        upstream = route.upstream.rstrip("/") + rest
        return Target(route=route, url=f"{upstream}?{origin.query}" if origin.query else upstream)
    raise UrlRefused(f"URL {url!r} is not allowed; allowed URL prefixes: {allowed}")


def _parse(url: str) -> _Origin:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"malformed URL {url!r} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlRefused(f"URL {url!r} must start with http:// or https://")
    if not parts.hostname:
        raise UrlRefused(f"URL {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused(f"URL {url!r} must not carry user info before the host")
    return _Origin(
        scheme=scheme,
        host=parts.hostname.lower().rstrip("."),
        port=port or _DEFAULT_PORTS[scheme],
        path=_normalise_path(parts.path, url),
        query=parts.query,
    )


def _normalise_path(path: str, url: str) -> str:
    kept: list[str] = []
    for raw in path.split("/"):
        decoded = unquote(raw)
        if "/" in decoded or "\\" in decoded:
            raise UrlRefused(f"URL {url!r} hides a path separator in a segment")
        if decoded in ("", "."):
            continue
        if decoded == "..":
            if not kept:
                raise UrlRefused(f"URL {url!r} climbs above the root")
            kept.pop()
            continue
        kept.append(raw)
    return "/" + "/".join(kept) if kept else ""
