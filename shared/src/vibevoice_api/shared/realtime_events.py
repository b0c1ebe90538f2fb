"""The server events of ``/v1/realtime``: the subset of OpenAI's Realtime protocol we speak.

Used by the TTS service's session (``tts/realtime.py``) and by the gateway's relay for its own
errors. Every event carries an ``event_id``.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from .errors import APIError
from .events import Event
from .schemas import ErrorDetail


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class RealtimeEvent(Event):
    event_id: str = Field(default_factory=lambda: new_id("event"))


class RealtimeErrorDetail(ErrorDetail):
    event_id: str | None = None  # the client event that caused it, when one did


class RealtimeError(RealtimeEvent):
    OMIT_NONE: ClassVar[bool] = False  # every key of the error object, null where unknown
    type: Literal["error"] = "error"
    error: RealtimeErrorDetail

    @classmethod
    def of(cls, exc: APIError, event_id: str | None = None) -> RealtimeError:
        detail = RealtimeErrorDetail(
            message=exc.message, type=exc.error_type, param=exc.param, code=exc.code, event_id=event_id
        )
        return cls(error=detail)


# --------------------------------------------------------------------------------------------
# What the events carry


class OutputFormat(BaseModel):
    type: Literal["audio/pcm"] = "audio/pcm"
    rate: int = 24000


class AudioOutput(BaseModel):
    format: OutputFormat = Field(default_factory=OutputFormat)
    voice: str | None
    speed: float


class SessionAudio(BaseModel):
    output: AudioOutput


class Session(BaseModel):
    id: str
    object: Literal["realtime.session"] = "realtime.session"
    type: Literal["realtime"] = "realtime"
    model: str
    output_modalities: list[str] = ["audio"]
    audio: SessionAudio


class InputText(BaseModel):
    """Text content of a message item (``text`` parts are accepted as well)."""

    type: Literal["input_text"] = "input_text"
    text: str


class MessageItem(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["user"] = "user"
    content: list[InputText]


class Response(BaseModel):
    id: str
    object: Literal["realtime.response"] = "realtime.response"
    status: Literal["in_progress", "completed", "cancelled", "failed"]
    output: list[dict] | None = None


# --------------------------------------------------------------------------------------------
# The events (besides ``error``)


class SessionEvent(RealtimeEvent):
    """``session.created`` on connect; ``session.updated`` after each ``session.update``."""

    type: Literal["session.created", "session.updated"]
    session: Session


class ConversationItemCreated(RealtimeEvent):
    """The answer to ``conversation.item.create``: the text is queued for the next response."""

    type: Literal["conversation.item.created"] = "conversation.item.created"
    item: MessageItem


class ResponseEvent(RealtimeEvent):
    """``response.created`` (status in_progress, empty output) and ``response.done`` (final status)."""

    type: Literal["response.created", "response.done"]
    response: Response

    @classmethod
    def created(cls, response_id: str) -> ResponseEvent:
        return cls(type="response.created", response=Response(id=response_id, status="in_progress", output=[]))

    @classmethod
    def done(cls, response_id: str, status: str) -> ResponseEvent:
        return cls(type="response.done", response=Response(id=response_id, status=status))  # type: ignore[arg-type]


class OutputAudioDone(RealtimeEvent):
    """The response's audio is complete (``response.done`` follows)."""

    type: Literal["response.output_audio.done"] = "response.output_audio.done"
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


class OutputAudioDelta(OutputAudioDone):
    """A chunk of the response's audio, as soon as it is generated."""

    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"  # type: ignore[assignment]
    delta: str  # base64 PCM16, 24 kHz mono
