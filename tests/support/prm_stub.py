"""A stand-in PRM server on loopback that speaks `python -m rm serve`'s wire protocol.

It answers `POST /score` from a script: each request takes the next entry of `answers`
(the last one repeats), an entry being the list of scores for the items, or raw body text.
Numbers are written as Python's `json` writes them, so NaN and Infinity go out as the
non-standard tokens a faulty server would send.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from tools.http_server import EmbeddedServer

Answer = Sequence[float] | str


class PrmStub(EmbeddedServer):
    """`async with PrmStub([[0.9, 0.1], [float("nan")]]) as prm:` then `--rm-url prm.url`."""

    def __init__(self, answers: Sequence[Answer]) -> None:
        super().__init__()
        self.url = ""
        assert answers, "script at least one answer"
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    async def start(self) -> None:
        await super().start()
        self.url = self.base_url  # kept after close, for messages that name it

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/score", self._score)
        app.router.add_get("/health", self._health)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "model": "stub-prm", "backend": "stub", "counters": {}})

    async def _score(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, str):
            return web.Response(text=answer, content_type="application/json")
        count = len(body["items"])
        scores = [answer[i % len(answer)] for i in range(count)]
        logits = [_logits(score) for score in scores]
        return web.Response(text=json.dumps({"scores": scores, "logits": logits}), content_type="application/json")


def _logits(score: float) -> list[float]:
    if not math.isfinite(score) or not 0 < score < 1:
        return [score, 0.0]
    return [math.log(score / (1 - score)), 0.0]
