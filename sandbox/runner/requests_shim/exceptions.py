"""The exception names of `requests.exceptions`, as the sandbox's `requests` raises them."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConnectionError",
    "HTTPError",
    "InvalidJSONError",
    "JSONDecodeError",
    "RequestException",
    "Timeout",
]


class RequestException(IOError):
    """Base of every error the sandbox's `requests` raises."""

    def __init__(self, *args: Any, response: Any = None, request: Any = None) -> None:
        super().__init__(*args)
        self.response = response
        self.request = request


class HTTPError(RequestException):
    """`raise_for_status()` on a 4xx or 5xx response."""


class ConnectionError(RequestException):  # noqa: A001 - the name `requests` uses
    """The call never reached an API: refused by the tool gateway, or unreachable."""


class Timeout(RequestException):
    """The API did not answer in time."""


class InvalidJSONError(RequestException):
    """A body could not be encoded as JSON."""


class JSONDecodeError(InvalidJSONError, ValueError):
    """`Response.json()` on a body that is not JSON."""
