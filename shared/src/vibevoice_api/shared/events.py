"""Events: the JSON objects streamed to clients, as server-sent events or WebSocket messages.

Every event is a pydantic model with a ``type``; :func:`sse` is the one way to put one on an SSE
stream and :meth:`Event.to_json` the one way to write one as text (WebSocket messages).
Realtime (WebSocket) events are in :mod:`.realtime_events`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import ClassVar, Literal

from pydantic import BaseModel

from .errors import APIError, InternalError
from .schemas import DiarizedSegment, ErrorDetail, Language, Logprob, UsageDuration, UsageTokens


class Event(BaseModel):
    #: Leave out fields that are None (optional parts such as ``usage``); False writes them as null.
    OMIT_NONE: ClassVar[bool] = True

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=self.OMIT_NONE)


def sse(event: Event) -> bytes:
    """One server-sent event (``data: {json}`` and a blank line)."""
    return b"data: " + event.to_json().encode() + b"\n\n"


class ErrorEvent(Event):
    """A failure after the stream started (the HTTP status is sent already): OpenAI's error object."""

    OMIT_NONE: ClassVar[bool] = False  # the error object always has its four keys
    type: Literal["error"] = "error"
    error: ErrorDetail

    @classmethod
    def of(cls, exc: APIError) -> ErrorEvent:
        return cls(error=ErrorDetail(message=exc.message, type=exc.error_type, param=exc.param, code=exc.code))

    @classmethod
    def internal(cls, message: str) -> ErrorEvent:
        return cls.of(InternalError(message))


async def sse_stream(events: AsyncIterator[Event], failure: str, log: logging.Logger) -> AsyncIterator[bytes]:
    """``events`` as a server-sent event stream that ends with an ``error`` event if they fail.

    An :class:`APIError` is told as it is; anything else is logged and told as ``failure``.
    """
    try:
        async for event in events:
            yield sse(event)
    except APIError as exc:
        yield sse(ErrorEvent.of(exc))
    except Exception:
        log.exception("stream failed: %s", failure)
        yield sse(ErrorEvent.internal(failure))


# --------------------------------------------------------------------------------------------
# Speech: POST /v1/audio/speech with stream_format=sse


class SpeechAudioDelta(Event):
    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio: str  # base64 bytes of the requested response_format


class SpeechUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class SpeechAudioDone(Event):
    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: SpeechUsage


# --------------------------------------------------------------------------------------------
# Transcription: POST /v1/audio/transcriptions with stream=true


class TranscriptTextDelta(Event):
    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    logprobs: list[Logprob] | None = None
    segment_id: str | None = None


class TranscriptTextSegment(DiarizedSegment, Event):
    pass


class TranscriptTextDone(Event):
    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    languages: list[Language] | None = None
    logprobs: list[Logprob] | None = None
    usage: UsageDuration | UsageTokens | None = None
