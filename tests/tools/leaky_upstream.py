"""A hostile upstream for the secret tests: it reflects the secret it was sent, in a chosen encoding.

`/reflect/<encoding>/<carrier>` takes the secret from the bearer header (or from the
`toolbench_key` body field), encodes it with `ENCODINGS[encoding]` and sends it back in the
body, a response header, a redirect's Location or an error message. Every leak it sent is
kept in `leaks`, so a test can check that none of them reached the sandbox. The other routes
answer odd bodies: oversized with and without a charset, gzip, invalid UTF-8, binary.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
from collections.abc import Callable
from urllib.parse import quote, quote_plus, unquote

from aiohttp import web

from tools.http_server import EmbeddedServer


def _every_char(template: str) -> Callable[[str], str]:
    return lambda secret: "".join(template.format(ord(char)) for char in secret)


def _b64(prefix: bytes, *, urlsafe: bool = False, pad: bool = True) -> Callable[[str], str]:
    def encode(secret: str) -> str:
        raw = prefix + secret.encode()
        text = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
        return text if pad else text.rstrip("=")

    return encode


ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda s: s,
    "upper-case": str.upper,
    "percent": lambda s: quote(s, safe=""),
    "percent-keep-slash": quote,
    "percent-plus": quote_plus,
    "percent-lower": lambda s: re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(s, safe="")),
    "percent-every-char": _every_char("%{:02X}"),
    "percent-twice": lambda s: quote(quote(s, safe=""), safe=""),
    "json-slash": lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    "json-unicode-every-char": _every_char("\\u{:04x}"),
    "json-in-json": lambda s: json.dumps(json.dumps({"key": s}))[1:-1],
    "python-hex-escape": _every_char("\\x{:02x}"),
    "html-entities": _every_char("&#{};"),
    "html-hex-entities": _every_char("&#x{:x};"),
    "html-named": lambda s: html.escape(s).replace("/", "&sol;"),
    "base64": _b64(b""),
    "base64-nopad": _b64(b"", pad=False),
    "base64-urlsafe": _b64(b"", urlsafe=True),
    "base64-urlsafe-nopad": _b64(b"", urlsafe=True, pad=False),
    "base64-offset1": _b64(b"x"),
    "base64-offset2": _b64(b"xy"),
    "base64-basic-auth": _b64(b"user:"),
    "base64-urlsafe-offset1-nopad": _b64(b"{", urlsafe=True, pad=False),
    "base64-percent": lambda s: quote(base64.b64encode(s.encode()).decode(), safe=""),
    "base64-json-slash": lambda s: base64.b64encode(b"??" + s.encode()).decode().replace("/", "\\/"),
    "base64-mime-wrapped": lambda s: base64.encodebytes(b"-" * 50 + s.encode()).decode(),
    "utf-16": lambda s: s.encode("utf-16-le").decode("latin-1"),
    "hex": lambda s: s.encode().hex(),
    "hex-upper": lambda s: s.encode().hex().upper(),
    "prefix": lambda s: s[:12],
    "suffix": lambda s: s[-12:],
    "middle": lambda s: s[6:18],
    "prefix-percent": lambda s: quote(s[:14], safe=""),
    "base64-truncated": lambda s: base64.b64encode(s.encode()).decode()[:20],
}
CARRIERS = ("body", "json", "header", "redirect", "error", "split")
HEADER_CARRIERS = ("header", "redirect", "split")
NOT_IN_HEADERS = ("base64-mime-wrapped", "utf-16")
"""Encodings a header value cannot hold (line breaks, NULs)."""


class LeakyUpstream(EmbeddedServer):
    def __init__(self) -> None:
        super().__init__()
        self.leaks: list[str] = []
        self.received: list[dict[str, object]] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/reflect/{encoding}/{carrier}", self._reflect)
        app.router.add_route("*", "/odd/{kind}/{size}", self._odd)
        app.router.add_route("*", "/{tail:.*}", self._record_only)
        return app

    async def _received(self, request: web.Request) -> dict[str, object]:
        body = await request.text()
        entry = {"path": request.path, "query": list(request.query.items()), "headers": dict(request.headers), "body": body}
        self.received.append(entry)
        return entry

    async def _record_only(self, request: web.Request) -> web.Response:
        return web.json_response(await self._received(request))

    async def _reflect(self, request: web.Request) -> web.Response:
        entry = await self._received(request)
        secret = str(entry["headers"].get("Authorization", "")).removeprefix("Bearer ")  # type: ignore[union-attr]
        if not secret:
            secret = str(json.loads(str(entry["body"]) or "{}").get("toolbench_key", ""))
        leak = ENCODINGS[request.match_info["encoding"]](secret)
        self.leaks.append(leak)
        carrier = request.match_info["carrier"]
        if carrier == "body":
            return web.Response(text=f"you sent: {leak}")
        if carrier == "json":
            return web.Response(text=json.dumps({"echo": leak}), content_type="application/json")
        if carrier == "header":
            return web.json_response({"ok": True}, headers={"X-Echo": leak})
        if carrier == "redirect":
            return web.Response(status=302, headers={"Location": f"https://elsewhere.example/cb?k={leak}"})
        if carrier == "error":
            return web.Response(status=500, text=f"Traceback: invalid key {leak!r} for this account")
        half = len(leak) // 2
        self.leaks[-1:] = [leak[:half], leak[half:]]
        return web.Response(text=f"second half: {leak[half:]}", headers={"X-First-Half": leak[:half].strip()})

    async def _odd(self, request: web.Request) -> web.Response:
        await self._received(request)
        kind, size = request.match_info["kind"], int(request.match_info["size"])
        if kind == "plain-no-charset":
            return web.Response(body=b"y" * size, headers={"Content-Type": "text/plain"})
        if kind == "no-content-type":
            response = web.Response(body=b"y" * size)
            response.headers.popall("Content-Type", None)
            return response
        if kind == "octet-stream":
            return web.Response(body=bytes(range(256)) * (size // 256), content_type="application/octet-stream")
        if kind == "charset":
            return web.Response(text="y" * size, content_type="text/plain", charset="utf-8")
        if kind == "bogus-charset":
            return web.Response(body=b"y" * size, headers={"Content-Type": "text/plain; charset=no-such-codec"})
        if kind == "gzip":
            packed = gzip.compress(b"z" * size)
            return web.Response(body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
        if kind == "corrupt-gzip":
            return web.Response(body=b"\x1f\x8b not really gzip" * size, headers={"Content-Encoding": "gzip"})
        if kind == "invalid-utf8":
            return web.Response(body=b"ok \xff\xfe\xc3( " * (size // 8), content_type="application/json")
        raise web.HTTPNotFound()


def decodings(text: str) -> list[str]:
    """`text` and what it reads as after the usual decodings, for an independent leak check."""
    texts = [text, unquote(text), unquote(unquote(text)), html.unescape(text), text.replace("\\/", "/"), text.replace("\0", "")]
    try:
        texts.append(text.encode("latin-1", "backslashreplace").decode("unicode_escape"))
    except UnicodeDecodeError:
        pass
    flat = re.sub(r"\\n|\s", "", unquote(text).replace("\\/", "/"))
    for run in re.findall(r"[A-Za-z0-9+/_-]{12,}", flat):
        for start in range(4):
            piece = run[start:]
            piece = piece[: len(piece) - len(piece) % 4]
            for altchars in (b"+/", b"-_"):
                try:
                    texts.append(base64.b64decode(piece, altchars=altchars, validate=True).decode("latin-1"))
                except ValueError:
                    pass
    for run in re.findall(r"[0-9A-Fa-f]{16,}", text):
        texts.append(bytes.fromhex(run[: len(run) - len(run) % 2]).decode("latin-1"))
    return texts


def fragments(secret: str, size: int = 8) -> list[str]:
    size = min(size, len(secret))
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def leaked(secret: str, text: str) -> list[str]:
    """The pieces (8 characters or more) of `secret` that `text` still carries in some decoding."""
    return sorted({piece for decoded in decodings(text) for piece in fragments(secret) if piece in decoded})
