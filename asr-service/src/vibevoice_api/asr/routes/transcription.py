"""``POST /v1/audio/transcriptions`` and ``/translations``: decode the upload, transcribe, render.

Whole answers come in every OpenAI ``response_format``; ``stream=true`` answers with server-sent
``transcript.text.*`` events as segments are decoded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from vibevoice_api.shared import transcripts as tx
from vibevoice_api.shared.audio import decode_audio
from vibevoice_api.shared.cancel import until_disconnect
from vibevoice_api.shared.events import (
    Event,
    TranscriptTextDelta,
    TranscriptTextDone,
    TranscriptTextSegment,
    sse_stream,
)
from vibevoice_api.shared.openapi import transcription_form, transcription_responses
from vibevoice_api.shared.schemas import ERROR_RESPONSES, UsageDuration
from vibevoice_api.shared.transcription_request import TranscriptionRequest

from .. import metrics
from ..protocol import parse_request
from ..settings import ASRSettings

log = logging.getLogger("vibevoice_api.asr")
router = APIRouter(tags=["audio"])
RESPONSES = {**transcription_responses(), **ERROR_RESPONSES}


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
        started = time.perf_counter()
        with metrics.DECODE_SECONDS.time():
            audio = await asyncio.to_thread(
                decode_audio, parsed.audio, eng.sample_rate, raw=parsed.raw, max_seconds=settings.asr_max_audio_seconds
            )
    finally:
        parsed.close()
    duration = audio.shape[0] / eng.sample_rate
    kwargs = {"prompt": params.prompt, "language": params.language, "temperature": params.temperature, "task": task}
    if params.stream:
        return StreamingResponse(
            sse_stream(_events(eng, audio, duration, params, kwargs, started), "Transcription failed.", log),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    metrics.ACTIVE.inc()
    metrics.update_gauges(eng)
    try:
        segments = await until_disconnect(request, eng.transcribe(audio, **kwargs))
    finally:
        metrics.ACTIVE.dec()
        metrics.update_gauges(eng)
    metrics.account(duration, started)
    segs = tx.normalize([tx.Seg(s.start, s.end, s.text, s.speaker) for s in segments], duration)
    return render(params, segs, duration, settings)


async def _events(
    eng: Any, audio: Any, duration: float, params: TranscriptionRequest, kwargs: dict[str, Any], started: float
) -> AsyncIterator[Event]:
    metrics.ACTIVE.inc()
    texts: list[str] = []
    mapping: dict[int, str] = {}
    stream = eng.transcribe_stream(audio, **kwargs)
    try:
        i = 0
        async for seg in stream:
            clean = tx.normalize([tx.Seg(seg.start, seg.end, seg.text, seg.speaker)], duration)
            if not clean:
                continue
            s = clean[0]
            delta = (" " if texts else "") + s.text.replace("\n", " ")
            texts.append(s.text.replace("\n", " "))
            seg_id = f"seg_{i}"
            yield TranscriptTextDelta(delta=delta, segment_id=seg_id)
            if params.response_format == "diarized_json":
                speaker = tx.speaker_label(s.speaker, mapping)
                yield TranscriptTextSegment(
                    id=seg_id, start=round(s.start, 3), end=round(s.end, 3), text=s.text, speaker=speaker
                )
            i += 1
        metrics.account(duration, started)
        usage = UsageDuration(seconds=round(duration, 3))
        yield TranscriptTextDone(text=" ".join(texts).strip(), usage=usage)
    finally:
        metrics.ACTIVE.dec()
        await stream.aclose()


def render(params: TranscriptionRequest, segs: list[tx.Seg], duration: float, settings: ASRSettings) -> Response:
    fmt = params.response_format
    if fmt == "text":
        return PlainTextResponse(tx.to_text(segs))
    if fmt == "srt":
        return PlainTextResponse(tx.to_srt(segs, speakers=settings.asr_subtitle_speakers))
    if fmt == "vtt":
        return PlainTextResponse(tx.to_vtt(segs, speakers=settings.asr_subtitle_speakers), media_type="text/vtt")
    if fmt == "verbose_json":
        words = "word" in params.granularities
        body = tx.to_verbose(
            segs,
            duration=duration,
            language=params.language,
            task=params.task,
            temperature=params.temperature,
            words=words,
            include_segments="segment" in params.granularities or not words,
        ).model_dump(exclude_none=True)
        headers = {"x-vibevoice-word-timestamps": "approximate"} if words else None
        return JSONResponse(body, headers=headers)
    if fmt == "diarized_json":
        return JSONResponse(tx.to_diarized(segs, duration=duration).model_dump(exclude_none=True))
    return JSONResponse(tx.to_json(segs, duration).model_dump(exclude_none=True))
