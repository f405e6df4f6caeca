"""A small real API for the OpenAPI tests: it implements `openapi_data/notes.yaml` and serves that spec.

`/spec/<file>` serves the spec files with the server's own port filled in (the same text that
`write_spec` puts on disk); `/v1/...` implements the endpoints and answers 401 unless both the
`X-API-Key` header and the bearer token are right; `/v1/whoami` echoes whatever credentials it got
(header and query) back, as a careless upstream would; `/outside` lies outside the spec's servers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from tools.http_server import EmbeddedServer

SPEC_DIR = Path(__file__).resolve().parent / "openapi_data"
NOTES = [
    {"id": 1, "title": "Quarterly report draft", "tags": ["work"]},
    {"id": 2, "title": "Buy oat milk", "tags": ["home"]},
    {"id": 3, "title": "Plan the team offsite", "tags": ["work"]},
]


class NotesApi(EmbeddedServer):
    """The notes API; `received` keeps every request's path, query and headers."""

    def __init__(self, *, api_key: str, token: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.token = token
        self.received: list[dict[str, Any]] = []
        self.notes = [dict(note) for note in NOTES]
        self.extra_specs: dict[str, str] = {}
        """More documents served under `/spec/<name>`, as they are."""

    def spec_text(self, name: str) -> str:
        """The spec file `name` with this server's port in it."""
        return (SPEC_DIR / name).read_text(encoding="utf-8").replace("PORT", str(self.port))

    def write_spec(self, folder: Path) -> Path:
        """Write the spec files into `folder`; the main spec's path."""
        for source in SPEC_DIR.glob("*.yaml"):
            (folder / source.name).write_text(self.spec_text(source.name), encoding="utf-8")
        return folder / "notes.yaml"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/spec/{name}", self._spec)
        app.router.add_get("/v1/notes", self._list)
        app.router.add_post("/v1/notes", self._create)
        app.router.add_get("/v1/notes/{note_id}", self._get)
        app.router.add_post("/v1/notes/{note_id}/share", self._share)
        app.router.add_get("/v1/whoami", self._whoami)
        app.router.add_route("*", "/{tail:.*}", self._anything)
        return app

    def _record(self, request: web.Request) -> None:
        self.received.append({"path": request.path, "query": dict(request.query), "headers": dict(request.headers)})

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("X-API-Key") == self.api_key and request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _spec(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.extra_specs:
            return web.Response(text=self.extra_specs[name], content_type="application/yaml")
        if not (SPEC_DIR / name).is_file():
            raise web.HTTPNotFound()
        return web.Response(text=self.spec_text(name), content_type="application/yaml")

    async def _list(self, request: web.Request) -> web.Response:
        self._record(request)
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401)
        tag = request.query.get("tag")
        limit = int(request.query.get("limit", "10"))
        chosen = [note for note in reversed(self.notes) if tag is None or tag in note["tags"]]
        return web.json_response(chosen[:limit])

    async def _create(self, request: web.Request) -> web.Response:
        self._record(request)
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401)
        body = await request.json()
        note = {"id": len(self.notes) + 1, "title": body["title"], "tags": body.get("tags", [])}
        self.notes.append(note)
        return web.json_response(note, status=201)

    async def _get(self, request: web.Request) -> web.Response:
        self._record(request)
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401)
        wanted = int(request.match_info["note_id"])
        note = next((note for note in self.notes if note["id"] == wanted), None)
        return web.json_response(note) if note else web.json_response({"error": "no such note"}, status=404)

    async def _share(self, request: web.Request) -> web.Response:
        self._record(request)
        if not self._authorised(request):
            return web.json_response({"error": "unauthorised"}, status=401)
        form = await request.post()
        self.received[-1]["form"] = dict(form)
        return web.Response(status=204)

    async def _whoami(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(
            {
                "authorization": request.headers.get("Authorization", ""),
                "x_api_key": request.headers.get("X-API-Key", ""),
                "query": dict(request.query),
            },
            headers={"X-Echo-Key": request.headers.get("X-API-Key", "")},
        )

    async def _anything(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"path": request.path})
