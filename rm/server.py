"""The PRM scoring server: thin aiohttp routes over a started `Scorer`.

Routes: `POST /score` (all candidates of a step), `POST /generate` (one candidate, the reference
release's contract) and `GET /health`. Errors answer `{"error": "<one line>"}`: 400 for a bad
request, 413 for an oversized body, 503 while the queue is full, 500 when scoring failed.
"""

from __future__ import annotations

from typing import TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from codetool_kernel.errors import RewardModelError
from codetool_kernel.text import one_line
from codetool_kernel.validation import describe_validation_error
from rm.config import ServerConfig
from rm.errors import ScorerOverloadedError, ScoringInputError
from rm.schemas import (
    ErrorResponse,
    GenerateRequest,
    GenerateResponse,
    HealthResponse,
    ScoreRequest,
    ScoreResponse,
)
from rm.scorers.base import Scorer

Schema = TypeVar("Schema", bound=BaseModel)

log = structlog.get_logger("rm.server")


def _reply(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


def _error(status: int, message: str) -> web.Response:
    return _reply(ErrorResponse(error=message), status)


@web.middleware
async def _errors_as_json(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ScoringInputError as exc:
        return _error(400, one_line(exc))
    except ScorerOverloadedError as exc:
        return _error(503, one_line(exc))
    except RewardModelError as exc:
        log.error("scoring failed", path=request.path, error=one_line(exc))
        return _error(500, one_line(exc))
    except web.HTTPException as exc:  # aiohttp's own: 404, 405, 413, ...
        if exc.status < 400:
            raise
        return _error(exc.status, exc.text or exc.reason)


async def _parse(request: web.Request, schema: type[Schema]) -> Schema:
    try:
        raw = await request.read()
    except web.HTTPException:  # 413 for an oversized body
        raise
    except Exception as exc:  # a client that hung up mid-body: nobody reads the answer, but log nothing loud
        raise ScoringInputError(f"could not read the request body: {one_line(exc)}") from None
    try:
        return schema.model_validate_json(raw)
    except ValidationError as exc:
        raise ScoringInputError(f"invalid request: {describe_validation_error(exc)}") from None


class _Routes:
    def __init__(self, scorer: Scorer, config: ServerConfig, model: str) -> None:
        self._scorer = scorer
        self._config = config
        self._model = model

    async def score(self, request: web.Request) -> web.Response:
        body = await _parse(request, ScoreRequest)
        if len(body.items) > self._config.max_items:
            raise ScoringInputError(f"{len(body.items)} items in one request, at most {self._config.max_items}")
        results = await self._scorer.score([item.conversation() for item in body.items])
        return _reply(
            ScoreResponse(scores=[r.score for r in results], logits=[(r.yes_logit, r.no_logit) for r in results])
        )

    async def generate(self, request: web.Request) -> web.Response:
        body = await _parse(request, GenerateRequest)
        (result,) = await self._scorer.score([body.conversation()])
        log.debug("scored", index=body.index, score=result.score)
        return _reply(GenerateResponse(response=result.score))

    async def health(self, request: web.Request) -> web.Response:
        return _reply(
            HealthResponse(status="ok", model=self._model, backend=self._scorer.name, counters=self._scorer.counters())
        )


def build_app(scorer: Scorer, config: ServerConfig, *, model: str) -> web.Application:
    """The aiohttp application serving `scorer` (which the caller starts and closes)."""
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[_errors_as_json])
    routes = _Routes(scorer, config, model)
    app.add_routes(
        [
            web.post("/score", routes.score),
            web.post("/generate", routes.generate),
            web.get("/health", routes.health),
        ]
    )
    return app


class RewardModelServer:
    """`async with RewardModelServer(scorer, config, model=...) as server:` serves at `server.url`.

    Leaving the block stops accepting connections and gives requests in flight up to
    `config.shutdown_timeout_s` to finish.
    """

    def __init__(self, scorer: Scorer, config: ServerConfig, *, model: str) -> None:
        self._runner = web.AppRunner(
            build_app(scorer, config, model=model), shutdown_timeout=config.shutdown_timeout_s, access_log=None
        )
        self._config = config
        self.url = ""

    async def __aenter__(self) -> RewardModelServer:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._config.host, self._config.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise RewardModelError(f"cannot listen on {self._config.host}:{self._config.port}: {exc.strerror}") from None
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()
