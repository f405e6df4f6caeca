"""The base URLs of an OpenAPI document's `servers`: variables set to their defaults, relative URLs resolved."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

from codetool_kernel.errors import ConfigError, DataError

_VARIABLE = re.compile(r"\{([^{}]+)\}")


def server_urls(document: Mapping[str, Any], spec_uri: str, source: str) -> tuple[str, ...]:
    """Every server URL of the spec (OpenAPI's default server `/` when it names none), absolute, in spec order."""
    servers = document.get("servers") or [{"url": "/"}]
    if not isinstance(servers, list):
        raise DataError(f"{source}: `servers` is not a list")
    urls: list[str] = []
    for index, server in enumerate(servers):
        if not isinstance(server, Mapping) or not isinstance(server.get("url"), str):
            raise DataError(f"{source}: server {index} has no url")
        url = _expand(server["url"], server.get("variables") or {}, source)
        if not urlsplit(url).scheme:
            if urlsplit(spec_uri).scheme not in ("http", "https"):
                raise DataError(f"{source}: server URL {server['url']!r} is relative to a local file; give the server_url option")
            url = urljoin(spec_uri, url)
        url = url.rstrip("/")
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise DataError(f"{source}: server URL {url!r} is not an http(s) URL")
        if url not in urls:
            urls.append(url)
    return tuple(urls)


def checked_server_url(url: str) -> str:
    """The `server_url` option without its trailing slash; a one-line ConfigError unless it is an http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"openapi provider: server_url {url!r} is not an http(s) URL")
    return url.rstrip("/")


def _expand(template: str, variables: Any, source: str) -> str:
    def default_of(match: re.Match[str]) -> str:
        variable = variables.get(match.group(1)) if isinstance(variables, Mapping) else None
        if not isinstance(variable, Mapping) or "default" not in variable:
            raise DataError(f"{source}: server URL {template!r} uses {{{match.group(1)}}} without a default")
        return str(variable["default"])

    return _VARIABLE.sub(default_of, template)
