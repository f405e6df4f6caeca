"""The `openapi` provider: any OpenAPI 3.0/3.1 spec (file or URL, JSON or YAML) as a tool set.

    async with create_provider("openapi", spec="petstore.yaml", secrets={"api_key": "..."}) as provider:
        toolset = provider.toolset_for(Query(query_id="q", text="Which pets are sold?"))

The spec is read in `start()`. Calls may go to the spec's servers only (or `server_url`), where the
gateway attaches the secrets of its security schemes (see `tools.openapi.security`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from pydantic import Field

from codetool_kernel.errors import ToolGatewayError
from codetool_kernel.validation import FrozenModel
from tools.openapi.documents import load_document
from tools.openapi.endpoint_provider import EndpointToolProvider
from tools.openapi.endpoints import read_endpoints
from tools.openapi.security import Credentials, read_credentials
from tools.openapi.servers import checked_server_url, server_urls
from tools.registry import parse_options, register_provider

log = structlog.get_logger(__name__)


class OpenApiOptions(FrozenModel):
    """Options of the `openapi` provider (`create_provider("openapi", spec=..., **options)`)."""

    spec: str
    """Path or http(s) URL of an OpenAPI 3.0/3.1 document, JSON or YAML."""
    top_k: int = Field(20, gt=0)
    """Endpoints offered per query when the query names none (BM25 over the spec's endpoints)."""
    secrets: Mapping[str, str] = Field(default_factory=dict, repr=False)
    """Security scheme name -> secret; default per scheme: env `CODETOOL_SECRET_<SCHEME_NAME_UPPER_SNAKE>`."""
    server_url: str | None = None
    """The one base URL to use instead of the spec's `servers`."""
    name: str | None = None
    """The tool set's name (and query group); default `openapi`."""


@register_provider("openapi")
class OpenApiProvider(EndpointToolProvider):
    """Tool sets over the endpoints of one OpenAPI 3 spec."""

    label = "OpenAPI"

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(OpenApiOptions, "openapi", options)
        super().__init__(self.options.top_k)
        self._server_url = checked_server_url(self.options.server_url) if self.options.server_url else None
        self._servers: tuple[str, ...] = ()
        self._credentials: Credentials | None = None

    async def start(self) -> None:
        """Read the spec (and what it references), its endpoints and its security schemes (idempotent)."""
        if self._credentials is not None:
            return
        document = await load_document(self.options.spec)
        servers = (self._server_url,) if self._server_url else server_urls(document.content, document.uri, document.source)
        apis = await asyncio.to_thread(read_endpoints, document.content, servers[0], document.source)
        credentials = read_credentials(document.content, self.options.secrets, os.environ)
        if credentials.problems:
            log.warning(
                "openapi spec: calls go out without some credentials", spec=document.source, problems=credentials.problems
            )
        self.use_endpoints(apis)
        self._servers = servers
        self._credentials = credentials

    async def aclose(self) -> None:
        """Nothing to release: the spec is read once and kept."""

    @property
    def toolset_name(self) -> str:
        return self.options.name or "openapi"

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            raise ToolGatewayError("openapi provider is not started: use `async with create_provider(...)`")
        return self._credentials

    def route_targets(self) -> Sequence[tuple[str, str]]:
        return [(url, url) for url in self._servers]

    @property
    def usage_notes(self) -> str:
        notes = USAGE_NOTES
        if self.credentials.params:
            notes += " " + AUTH_PARAMS_NOTE
        return notes


USAGE_NOTES = (
    "A variable `headers` is already defined and authorises every call: pass it as is, "
    "`requests.get(url, headers=headers, params=params)` or `requests.post(url, headers=headers, json=body)`; "
    "for an API's own header parameters send `headers={**headers, 'Name': value}`. "
    "Replace each `{placeholder}` in a URL with a real value (found by an earlier call when the query does not give it); "
    "no `{` or `}` may remain in the URL. Query parameters go in `params`, body parameters in `json` as one object, "
    "form parameters in `data` as one dict."
)
AUTH_PARAMS_NOTE = "A variable `auth_params` is already defined too: add it to every call's query, `params={**auth_params, ...}`."
