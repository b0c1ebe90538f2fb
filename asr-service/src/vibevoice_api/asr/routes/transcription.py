"""``POST /v1/audio/transcriptions`` and ``/translations``: decode the upload, transcribe, render.

Whole answers come in every OpenAI ``response_format``; ``stream=true`` answers with server-sent
``transcript.text.*`` events as the text is generated (see :mod:`..answer`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask
from vibevoice_api.shared.audio import decode_audio
from vibevoice_api.shared.cancel import until_disconnect
from vibevoice_api.shared.events import Event, sse_stream
from vibevoice_api.shared.openapi import transcription_form, transcription_responses

from .. import answer, metrics
from ..engine.runtime import Usage
from ..protocol import parse_request
from ..settings import ASRSettings
from ..speakers import parse_known_speakers

log = logging.getLogger("vibevoice_api.asr")
router = APIRouter(tags=["audio"])
RESPONSES = transcription_responses()


@router.post(
    "/v1/audio/transcriptions",
    summary="Transcribe audio",
    openapi_extra=transcription_form(),
    responses=RESPONSES,
)
async def transcriptions(request: Request) -> Response:
    return await handle(request, "transcribe")


@router.post(
    "/v1/audio/translations",
    summary="Translate audio into English",
    openapi_extra=transcription_form(translation=True),
    responses=RESPONSES,
)
async def translations(request: Request) -> Response:
    return await handle(request, "translate")


async def handle(request: Request, task: str) -> Response:
    settings: ASRSettings = request.app.state.settings
    eng = request.app.state.holder.require()
    parsed = await parse_request(
        request,
        task,
        settings.identity,
        word_mode=settings.asr_word_timestamps,
        max_json_bytes=settings.max_upload_bytes,
    )
    params = parsed.params
    try:
        known = await asyncio.to_thread(
            parse_known_speakers, params.known_speaker_names, params.known_speaker_references
        )
        started = time.perf_counter()
        with metrics.DECODE_SECONDS.time():
            audio = await asyncio.to_thread(
                decode_audio, parsed.audio, eng.sample_rate, raw=parsed.raw, max_seconds=settings.asr_max_audio_seconds
            )
    finally:
        parsed.close()
    duration = audio.shape[0] / eng.sample_rate
    kwargs = {
        "prompt": answer.engine_prompt(params.prompt, params.keywords),
        "language": answer.engine_language(params.language, params.languages),
        "temperature": params.temperature,
        "task": task,
    }
    vad = params.chunking_strategy
    if isinstance(vad, dict) and vad.get("type") == "server_vad" and duration > eng.single_pass_seconds:
        # Longer than one pass: the client's server_vad settings choose where the audio is cut.
        kwargs["silences"] = await asyncio.to_thread(answer.silences_for, audio, eng.sample_rate, vad)
    usage = Usage()
    how = answer.Answering(params, audio, eng.sample_rate, usage, known, settings.asr_speaker_match_threshold)
    if params.stream:
        events = _events(eng, audio, duration, kwargs, how, started)
        return StreamingResponse(
            sse_stream(events, "Transcription failed.", log),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            # A client that leaves cancels the response while the events are suspended mid-stream: closing them
            # at once (not whenever they are garbage-collected) stops the transcription, and a vLLM request.
            background=BackgroundTask(events.aclose),
        )
    speech = answer.start_speech_scores(audio, eng.sample_rate) if params.response_format == "verbose_json" else None
    metrics.ACTIVE.inc()
    metrics.update_gauges(eng)
    try:
        segments = await until_disconnect(request, eng.transcribe(audio, usage=usage, **kwargs))
    finally:
        metrics.ACTIVE.dec()
        metrics.update_gauges(eng)
    metrics.account(duration, started)
    return await answer.whole(segments, how, subtitle_speakers=settings.asr_subtitle_speakers, speech=speech)


async def _events(
    eng: Any, audio: Any, duration: float, kwargs: dict[str, Any], how: answer.Answering, started: float
) -> AsyncIterator[Event]:
    metrics.ACTIVE.inc()
    items = eng.transcribe_stream(audio, text=True, usage=how.usage, **kwargs)
    try:
        async for event in answer.stream(items, how):
            if event.type == "transcript.text.done":
                metrics.account(duration, started)
            yield event
    finally:
        metrics.ACTIVE.dec()
        await items.aclose()
