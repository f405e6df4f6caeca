"""Wire schemas of the PRM server, shared by the server (to validate) and the client (to parse)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rm.scores import Conversation


class _Schema(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ChatMessage(_Schema):
    role: Literal["system", "user", "assistant"]
    content: str


class ScoreItem(_Schema):
    messages: list[ChatMessage] = Field(min_length=1)

    def conversation(self) -> Conversation:
        return [{"role": m.role, "content": m.content} for m in self.messages]


class ScoreRequest(_Schema):
    """`POST /score`: every candidate of one step."""

    items: list[ScoreItem] = Field(min_length=1)


class GenerateRequest(ScoreItem):
    """`POST /generate`: one candidate, the reference release's contract (`index` is only echoed in logs)."""

    index: int | str | None = None


class ScoreResponse(_Schema):
    scores: list[float]
    logits: list[tuple[float, float]]
    """`[yes_logit, no_logit]` per item."""


class GenerateResponse(_Schema):
    response: float


class HealthResponse(_Schema):
    status: Literal["ok"]
    model: str
    backend: str
    counters: dict[str, int]


class ErrorResponse(_Schema):
    error: str

