"""``POST /v1/audio/speech``: text to audio, streamed as it is generated (raw bytes or SSE events)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response
from vibevoice_api.shared.cancel import until_disconnect
from vibevoice_api.shared.events import Event, SpeechAudioDelta, SpeechAudioDone, SpeechUsage, sse_stream
from vibevoice_api.shared.formats import content_type
from vibevoice_api.shared.openapi import AUDIO_RESPONSE
from vibevoice_api.shared.schemas import SpeechRequest
from vibevoice_api.shared.stall import ClosingStreamingResponse

from .. import metrics
from ..engine_api import SpeechEngine, engine_of
from ..settings import TTSSettings
from ..speech import SpeechJob, b64, check_text, choose_voice, encoded_chunks

log = logging.getLogger("vibevoice_api.tts")
router = APIRouter(tags=["audio"])


@router.post("/v1/audio/speech", summary="Create speech", responses={200: AUDIO_RESPONSE})
async def speech(req: SpeechRequest, request: Request) -> Response:
    started = time.perf_counter()
    settings: TTSSettings = request.app.state.settings
    eng = engine_of(request)
    settings.identity.check(req.model)
    text = check_text(req.input, settings)
    job = SpeechJob(
        text=text,
        voice_id=choose_voice(eng, req.voice_name, settings),
        response_format=req.response_format,
        speed=req.speed,
        seed=req.seed,
    )
    chunks = encoded_chunks(eng, job)
    metrics.ACTIVE.inc()
    metrics.update_gauges(eng)
    try:
        # Wait for the first audio before sending headers: a busy engine or a bad voice file
        # still becomes a proper HTTP error, and the client's timer starts with real audio.
        first = await until_disconnect(request, chunks.__anext__())
    except StopAsyncIteration:
        first = b""
    except BaseException:
        metrics.ACTIVE.dec()
        await chunks.aclose()
        raise
    metrics.FIRST_AUDIO.observe(time.perf_counter() - started)
    metrics.CHARS.inc(len(text))
    if req.stream_format == "sse":
        body = sse_stream(_events(first, chunks, started, text, eng, job), "Speech generation failed.", log)
        return ClosingStreamingResponse(body, media_type="text/event-stream", headers={"cache-control": "no-cache"})
    return ClosingStreamingResponse(
        _audio(first, chunks, started, eng, job),
        media_type=content_type(job.response_format, eng.sample_rate),
        headers={"x-vibevoice-voice": job.voice_id},
    )


async def _audio(
    first: bytes, chunks: AsyncIterator[bytes], started: float, eng: SpeechEngine, job: SpeechJob
) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for data in chunks:
            yield data
        _account(started, eng, job)
    finally:
        metrics.ACTIVE.dec()
        metrics.update_gauges(eng)
        await chunks.aclose()  # type: ignore[attr-defined]


async def _events(
    first: bytes, chunks: AsyncIterator[bytes], started: float, text: str, eng: SpeechEngine, job: SpeechJob
) -> AsyncIterator[Event]:
    try:
        if first:
            yield SpeechAudioDelta(audio=b64(first))
        async for data in chunks:
            yield SpeechAudioDelta(audio=b64(data))
        seconds = _account(started, eng, job)
        out_tokens = int(round(seconds * 7.5))  # speech latents: 7.5 per second of audio
        in_tokens = eng.count_tokens(text)
        usage = SpeechUsage(input_tokens=in_tokens, output_tokens=out_tokens, total_tokens=in_tokens + out_tokens)
        yield SpeechAudioDone(usage=usage)
    finally:
        metrics.ACTIVE.dec()
        metrics.update_gauges(eng)
        await chunks.aclose()  # type: ignore[attr-defined]


def _account(started: float, eng: SpeechEngine, job: SpeechJob) -> float:
    seconds = job.samples / eng.sample_rate
    if seconds:
        metrics.AUDIO_SECONDS.inc(seconds)
        metrics.RTF.observe((time.perf_counter() - started) / seconds)
    return seconds
