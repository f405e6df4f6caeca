"""The TMDB tool set (RestBench-TMDB): 54 GET endpoints under `https://api.themoviedb.org/3`.

The RestBench spec ships with the package (`tools/data/tmdb_spec.json.gz`, MIT, see
`tools/data/TMDB_SPEC_LICENSE.txt`); `spec_path` overrides it. Generated code calls
`requests.get(url, headers=headers, params=...)`; `headers` is a preset global whose bearer
token is a mask, and the gateway attaches the real token to the `Authorization` header only.
With a real token (option or env `TMDB_API_TOKEN`) calls go to the real API, and with a
`cache_dir` each answer is recorded there; without a token, an embedded virtual TMDB answers,
from that cache first and otherwise by simulation (flagged `simulated` on the call record),
with its own random token standing behind the same mask.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from codetool_kernel.errors import ConfigError, DataError, ToolGatewayError
from codetool_kernel.files import read_json
from codetool_kernel.text import truncate
from tools.registry import parse_options, register_provider
from tools.retrieval import ApiRetriever
from tools.schema_shapes import compact_shape, field_names
from tools.secrets import SecretSlot
from tools.toolset import ApiParameter, ApiSpec, Query, Route, ToolProvider, ToolSet
from tools.virtual_tmdb import TMDB_TOKEN_MASK, VirtualTmdbServer

TMDB_BASE_URL = "https://api.themoviedb.org/3"
BUNDLED_SPEC = "data/tmdb_spec.json.gz"
SECRET_SLOTS = (SecretSlot(mask=TMDB_TOKEN_MASK, place="header", name="Authorization", template="Bearer {secret}"),)
"""The token goes in the bearer `Authorization` header, and nowhere else."""
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class TmdbOptions(BaseModel):
    """Options of the `tmdb` provider (`create_provider("tmdb", spec_path=..., **options)`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec_path: str | None = None
    """A RestBench TMDB spec (`tmdb_spec.json`, or gzipped); None: the one shipped with the package."""
    token: str | None = None
    """TMDB API read access token; default: env `TMDB_API_TOKEN`. None: the virtual TMDB answers."""
    virtual: bool | None = None
    """Force the virtual TMDB (True) or the real API (False); None: real when a token is known."""
    cache_dir: str | None = None
    """Response cache (StableToolBench layout): real answers are recorded here, the virtual TMDB replays them."""
    base_url: str = TMDB_BASE_URL
    """The API URL shown in prompts (and allowed to generated code)."""
    real_url: str | None = None
    """Where real calls go; default `base_url` (tests point it at a loopback stand-in)."""
    top_k: int = Field(20, gt=0)


@register_provider("tmdb")
class TmdbProvider(ToolProvider):
    """Tool sets for RestBench-TMDB queries."""

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(TmdbOptions, "tmdb", options)
        self.apis = load_tmdb_spec(self.options.spec_path, self.options.base_url)
        self._by_name = {api.name: api for api in self.apis}
        token = self.options.token or os.environ.get("TMDB_API_TOKEN") or ""
        self.uses_virtual = self.options.virtual if self.options.virtual is not None else not token
        if not self.uses_virtual and not token:
            raise ConfigError("tmdb provider: virtual=False needs a token (option token or env TMDB_API_TOKEN)")
        self._token = secrets.token_urlsafe(24) if self.uses_virtual else token
        self._server: VirtualTmdbServer | None = None
        self._retriever: ApiRetriever | None = None

    async def start(self) -> None:
        recording = not self.uses_virtual and self.options.cache_dir is not None
        if (self.uses_virtual or recording) and self._server is None:
            server = VirtualTmdbServer(
                self.apis,
                token=self._token,
                cache_dir=self.options.cache_dir,
                live_url=(self.options.real_url or self.options.base_url) if recording else None,
                base_path=_path_of(self.options.base_url),
            )
            await server.start()
            self._server = server

    async def aclose(self) -> None:
        if self._server is not None:
            await self._server.aclose()
            self._server = None

    @property
    def upstream_url(self) -> str:
        """Where calls under `base_url` really go (the embedded server, when one runs)."""
        if self._server is not None:
            return self._server.base_url + _path_of(self.options.base_url)
        if not self.uses_virtual and self.options.cache_dir is None:
            return self.options.real_url or self.options.base_url
        raise ToolGatewayError("tmdb provider is not started: use `async with create_provider(...)`")

    def toolset_for(self, query: Query) -> ToolSet:
        if query.api_list:
            unknown = [name for name in query.api_list if name not in self._by_name]
            if unknown:
                raise DataError(f"query {query.query_id}: unknown TMDB endpoint(s) {', '.join(map(str, unknown))}")
            apis = [self._by_name[name] for name in query.api_list]
        else:
            if self._retriever is None:
                self._retriever = ApiRetriever(self.apis)
            apis = self._retriever.search(query.text, self.options.top_k)
        return ToolSet(
            name="tmdb",
            apis=tuple(apis),
            routes=(Route(prefix=self.options.base_url, upstream=self.upstream_url, secret_slots=SECRET_SLOTS),),
            preset={"headers": {"Authorization": f"Bearer {TMDB_TOKEN_MASK}", "Content-Type": "application/json"}},
            secrets={TMDB_TOKEN_MASK: self._token},
            docs=render_docs(apis),
            usage_notes=USAGE_NOTES,
        )


USAGE_NOTES = (
    "A variable `headers` is already defined and authorises every call: pass it as is, "
    "`requests.get(url, headers=headers, params=params)`, and never write your own headers. "
    "Replace each `{placeholder}` in a URL with a real value found by an earlier call (e.g. a person id "
    "from a search); no `{` or `}` may remain in the URL. Query parameters go in `params`."
)


def load_tmdb_spec(path: str | Path | None = None, base_url: str = TMDB_BASE_URL) -> list[ApiSpec]:
    """The endpoints of a RestBench TMDB spec as `ApiSpec`s (URL templates under `base_url`).

    `path` may be plain or gzipped JSON; None reads the spec shipped with the package.
    """
    if path is None:
        path = f"tools/{BUNDLED_SPEC} (shipped)"
        spec = json.loads(gzip.decompress(resources.files("tools").joinpath(BUNDLED_SPEC).read_bytes()))
    elif str(path).endswith(".gz"):
        spec = _read_gzipped_json(Path(path))
    else:
        spec = read_json(path)
    endpoints = spec.get("endpoints") if isinstance(spec, Mapping) else None
    if not isinstance(endpoints, list) or not endpoints:
        raise DataError(f"{path}: no `endpoints` list in the TMDB spec")
    servers = spec.get("servers") or [{}]
    server = str(servers[0].get("url") or TMDB_BASE_URL) if isinstance(servers[0], Mapping) else TMDB_BASE_URL
    apis = []
    for index, endpoint in enumerate(endpoints):
        try:
            apis.append(_endpoint_spec(endpoint, server, base_url))
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: endpoint {index} is malformed ({type(exc).__name__}: {exc})") from None
    return apis


def _read_gzipped_json(path: Path) -> Any:
    try:
        packed = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return json.loads(gzip.decompress(packed))
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not gzipped JSON ({type(exc).__name__})") from None


def _endpoint_spec(endpoint: Mapping[str, Any], server: str, base_url: str) -> ApiSpec:
    url = base_url.rstrip("/") + "/" + str(endpoint["url"]).removeprefix(server.rstrip("/")).lstrip("/")
    content = (endpoint.get("responses") or {}).get("content", {}).get("application/json", {})
    schema = content.get("schema") or {}
    example = ((content.get("examples") or {}).get("response") or {}).get("value")
    placeholders = _PLACEHOLDER.findall(url)
    path_parameters = [
        ApiParameter(
            name=name,
            type=_path_parameter_type(name, name == placeholders[-1], example),
            description=f"{name.replace('_', ' ')} to put in the URL path",
            required=True,
            location="path",
        )
        for name in placeholders
    ]
    query_parameters = [
        ApiParameter(
            name=raw["name"],
            type=str((raw.get("schema") or {}).get("type") or "string"),
            description=str(raw.get("description") or ""),
            required=bool(raw.get("required")),
            default=(raw.get("schema") or {}).get("default"),
            location=str(raw.get("in") or "query"),
        )
        for raw in endpoint.get("parameters") or ()
    ]
    return ApiSpec(
        name=endpoint["name"],
        method=str(endpoint.get("method") or "GET").upper(),
        url=url,
        description=str(endpoint.get("description") or ""),
        parameters=(*path_parameters, *query_parameters),
        extra={
            "response_schema": schema,
            "response_example": example,
            "search_terms": " ".join(field_names(schema)),
        },
    )


def _path_parameter_type(name: str, is_last: bool, example: Any) -> str:
    # `/credit/{credit_id}` and `/review/{review_id}` take string ids: their examples say so
    if name.endswith("_id") and is_last and isinstance(example, Mapping) and isinstance(example.get("id"), str):
        return "string"
    return "integer" if name.endswith(("_id", "_number")) else "string"


def render_docs(apis: Sequence[ApiSpec]) -> str:
    """The API documentation block: per endpoint its name, method, URL template, parameters, response shape."""
    blocks = []
    for number, api in enumerate(apis, 1):
        lines = [
            f"API {number}: {api.name}",
            f"  What it does: {truncate(' '.join(api.description.split()), 400) or '(no description)'}",
            f"  Method and URL: {api.method} {api.url}",
        ]
        if api.parameters:
            lines.append("  Parameters:")
            for p in api.parameters:
                default = f", default {p.default!r}" if p.default not in (None, "") else ""
                summary = truncate(" ".join(p.description.split()), 200)
                need = "required" if p.required else "optional"
                lines.append(f"    - {p.name} ({p.location}, {p.type}, {need}{default}): {summary}")
        lines.append(f"  Response shape: {compact_shape(api.extra.get('response_schema'))}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"tmdb provider: base_url {url!r} is not an http(s) URL")
    return parts.path.rstrip("/")
