"""The `requests` module as sandboxed code sees it.

It never opens a socket: every call becomes an `http_request` message handed to the
transport the runner installs (`install_transport`), and the host's tool gateway answers.
Only the subset of `requests` that API-calling code uses is offered.
"""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from . import exceptions
from .exceptions import ConnectionError, HTTPError, JSONDecodeError, RequestException, Timeout

_KNOWN_STATUSES = frozenset(status.value for status in HTTPStatus)

__all__ = [
    "ConnectionError",
    "HTTPError",
    "JSONDecodeError",
    "RequestException",
    "Response",
    "Session",
    "Timeout",
    "delete",
    "exceptions",
    "get",
    "head",
    "patch",
    "post",
    "put",
    "request",
]

Transport = Callable[[dict[str, Any]], dict[str, Any]]

_IGNORED_OPTIONS = frozenset({"verify", "allow_redirects", "stream", "proxies", "cert"})
_state: dict[str, Transport | None] = {"transport": None}


def install_transport(transport: Transport | None) -> None:
    """Route every call of this module through `transport` (None: refuse every call)."""
    _state["transport"] = transport


class CaseInsensitiveDict(MutableMapping):
    """Response headers: `headers["content-type"]` finds `Content-Type`."""

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._store: dict[str, tuple[str, Any]] = {}
        for key, value in (data or {}).items():
            self[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._store[key.lower()][1]

    def __setitem__(self, key: str, value: Any) -> None:
        self._store[key.lower()] = (key, value)

    def __delitem__(self, key: str) -> None:
        del self._store[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._store.values())

    def __len__(self) -> int:
        return len(self._store)

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class Response:
    """What a call returns: `status_code`, `headers`, `text`, `content`, `json()`..."""

    def __init__(self, status_code: int, headers: Mapping[str, str], text: str, url: str, method: str) -> None:
        self.status_code = status_code
        self.headers = CaseInsensitiveDict(headers)
        self.text = text
        self.url = url
        self.method = method
        self.encoding = "utf-8"
        self.reason = HTTPStatus(status_code).phrase if status_code in _KNOWN_STATUSES else ""

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"

    @property
    def content(self) -> bytes:
        return self.text.encode("utf-8")

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    def json(self, **kwargs: Any) -> Any:
        try:
            return _json.loads(self.text, **kwargs)
        except ValueError as exc:
            start = self.text[:60]
            raise JSONDecodeError(
                f"the response body of {self.method} {self.url} is not valid JSON ({exc}); it starts with {start!r}",
                response=self,
            ) from None

    def raise_for_status(self) -> None:
        kind = "Client" if 400 <= self.status_code < 500 else "Server" if self.status_code >= 500 else None
        if kind:
            reason = f" {self.reason}" if self.reason else ""
            raise HTTPError(f"{self.status_code} {kind} Error:{reason} for url: {self.url}", response=self)

    def iter_lines(self, decode_unicode: bool = False) -> Iterator[Any]:
        for line in self.text.splitlines():
            yield line if decode_unicode else line.encode("utf-8")


def request(
    method: str,
    url: str,
    params: Any = None,
    data: Any = None,
    headers: Mapping[str, Any] | None = None,
    json: Any = None,
    timeout: Any = None,
    **options: Any,
) -> Response:
    """Send one HTTP call to the host's tool gateway and wait for its answer."""
    unsupported = sorted(set(options) - _IGNORED_OPTIONS)
    if unsupported:
        raise TypeError(f"requests option(s) {', '.join(unsupported)} are not supported in the sandbox")
    method = str(method).upper()
    message = {
        "method": method,
        "url": str(url),
        "params": _query_params(params),
        "headers": {str(k): str(v) for k, v in (headers or {}).items() if v is not None},
        "json": _json_body(json),
        "data": _data_body(data),
        "timeout": _timeout_seconds(timeout),
    }
    transport = _state["transport"]
    if transport is None:
        raise ConnectionError(f"{method} {url}: HTTP calls are not available in this sandbox")
    answer = transport(message)
    if answer.get("error"):
        raise ConnectionError(str(answer["error"]))
    full_url = message["url"]
    if message["params"]:
        full_url += ("&" if "?" in full_url else "?") + urlencode(message["params"], doseq=True)
    return Response(int(answer.get("status") or 0), answer.get("headers") or {}, answer.get("body") or "", full_url, method)


def get(url: str, params: Any = None, **kwargs: Any) -> Response:
    return request("GET", url, params=params, **kwargs)


def post(url: str, data: Any = None, json: Any = None, **kwargs: Any) -> Response:
    return request("POST", url, data=data, json=json, **kwargs)


def put(url: str, data: Any = None, **kwargs: Any) -> Response:
    return request("PUT", url, data=data, **kwargs)


def patch(url: str, data: Any = None, **kwargs: Any) -> Response:
    return request("PATCH", url, data=data, **kwargs)


def delete(url: str, **kwargs: Any) -> Response:
    return request("DELETE", url, **kwargs)


def head(url: str, **kwargs: Any) -> Response:
    return request("HEAD", url, **kwargs)


class Session:
    """A `requests.Session`: default `headers` and `params` merged into every call."""

    def __init__(self) -> None:
        self.headers: CaseInsensitiveDict = CaseInsensitiveDict()
        self.params: dict[str, Any] = {}

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: kept for code written against `requests`."""

    def request(self, method: str, url: str, params: Any = None, headers: Mapping[str, Any] | None = None, **kwargs: Any) -> Response:
        merged_headers = {**self.headers, **(headers or {})}
        merged_params = {**self.params, **_query_params(params)}
        return request(method, url, params=merged_params, headers=merged_headers, **kwargs)

    def get(self, url: str, params: Any = None, **kwargs: Any) -> Response:
        return self.request("GET", url, params=params, **kwargs)

    def post(self, url: str, data: Any = None, json: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", url, data=data, json=json, **kwargs)

    def put(self, url: str, data: Any = None, **kwargs: Any) -> Response:
        return self.request("PUT", url, data=data, **kwargs)

    def patch(self, url: str, data: Any = None, **kwargs: Any) -> Response:
        return self.request("PATCH", url, data=data, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        return self.request("DELETE", url, **kwargs)


def _query_params(params: Any) -> dict[str, Any]:
    """Query parameters as a JSON object; repeated keys become lists, None values are dropped."""
    if params is None:
        return {}
    if isinstance(params, (str, bytes)):
        raise TypeError("pass params as a dict or a list of (key, value) pairs, not a string")
    pairs = params.items() if isinstance(params, Mapping) else params
    merged: dict[str, Any] = {}
    for key, value in pairs:
        if value is None:
            continue
        values = [_plain(v) for v in value] if isinstance(value, (list, tuple)) else [_plain(value)]
        key = str(key)
        if key in merged:
            previous = merged[key]
            merged[key] = (previous if isinstance(previous, list) else [previous]) + values
        else:
            merged[key] = values if isinstance(value, (list, tuple)) else values[0]
    return merged


def _plain(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _json_body(body: Any) -> Any:
    if body is None:
        return None
    try:
        return _json.loads(_json.dumps(body, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise exceptions.InvalidJSONError(f"json= body cannot be sent: {exc}") from None


def _data_body(data: Any) -> Any:
    if data is None or isinstance(data, str):
        return data
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).decode("utf-8", errors="replace")
    if isinstance(data, Mapping):
        return {str(k): _plain(v) for k, v in data.items() if v is not None}
    if isinstance(data, (list, tuple)):
        return {str(k): _plain(v) for k, v in data}
    raise TypeError(f"data= must be a dict, a list of pairs, str or bytes, not {type(data).__name__}")


def _timeout_seconds(timeout: Any) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, (tuple, list)):
        parts = [float(t) for t in timeout if t is not None]
        return max(parts) if parts else None
    return float(timeout)
