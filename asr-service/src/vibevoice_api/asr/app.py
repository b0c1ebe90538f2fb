"""The ASR service app: OpenAI ``/v1/audio/transcriptions`` and ``/translations`` on VibeVoice-ASR."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import Counter, Gauge, Histogram
from vibevoice_api.shared import transcripts as tx
from vibevoice_api.shared.app import create_app
from vibevoice_api.shared.audio import decode_audio
from vibevoice_api.shared.cancel import until_disconnect
from vibevoice_api.shared.discovery import install_model_routes
from vibevoice_api.shared.lifecycle import ModelHolder, model_lifespan
from vibevoice_api.shared.openapi import install_openapi, transcription_form, transcription_responses
from vibevoice_api.shared.schemas import ERROR_RESPONSES

from .protocol import TranscriptionParams, parse_request
from .settings import ASRSettings

log = logging.getLogger("vibevoice_api.asr")

QUEUE_DEPTH = Gauge("vibevoice_asr_queue_depth", "Requests waiting for the model")
ACTIVE = Gauge("vibevoice_asr_active_requests", "Requests being transcribed")
BATCH_SIZE = Histogram(
    "vibevoice_asr_batch_size", "Requests per generate call", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64)
)
AUDIO_SECONDS = Counter("vibevoice_asr_audio_seconds_total", "Seconds of audio transcribed")
RTF = Histogram(
    "vibevoice_asr_real_time_factor",
    "Processing time / audio duration per request",
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
LOOPS = Counter(
    "vibevoice_asr_repetition_loops_total",
    "Transcriptions caught repeating themselves, by outcome",
    ["outcome"],
)
for _outcome in ("retried", "cut"):
    LOOPS.labels(_outcome)  # both series exist (at 0) before the first loop
DECODE_SECONDS = Histogram("vibevoice_asr_decode_seconds", "Time to decode and resample an upload")


def load_engine(settings: ASRSettings) -> Any:
    from vibevoice_api.shared.download import ensure_snapshot

    from .engine import ASREngine, EngineConfig

    ensure_snapshot(
        settings.asr_model_path, settings.asr_hf_repo, allow_download=settings.auto_download, what="VibeVoice-ASR"
    )
    cfg = EngineConfig(
        model_dir=settings.asr_model_path,
        device=settings.device,
        dtype=None if settings.dtype == "auto" else settings.dtype,
        attn_implementation=settings.attn_implementation,
        max_batch_size=settings.asr_max_batch_size,
        batch_audio_seconds=settings.asr_batch_audio_seconds,
        max_batch_wait_ms=settings.asr_max_batch_wait_ms,
        max_queue=settings.max_queue,
        max_single_pass_seconds=settings.asr_max_single_pass_seconds,
        longform_overlap_seconds=settings.asr_longform_overlap_seconds,
        max_audio_seconds=settings.asr_max_audio_seconds,
        min_new_tokens=settings.asr_min_new_tokens,
        tokens_per_second=settings.asr_tokens_per_second,
        loop_detection=settings.asr_loop_detection,
        loop_retries=settings.asr_loop_retries,
    )
    engine = ASREngine.load(cfg)
    engine.on_batch = lambda n: BATCH_SIZE.observe(n)
    engine.on_loop = lambda retried: LOOPS.labels("retried" if retried else "cut").inc()
    return engine


def build_app(settings: ASRSettings | None = None, engine: Any = None) -> FastAPI:
    settings = settings or ASRSettings()
    if settings.tmp_dir is not None:
        import tempfile

        settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(settings.tmp_dir)  # where uploads are spooled
    holder: ModelHolder[Any] = ModelHolder(settings.asr_model_id)
    accepted = {settings.asr_model_id, *settings.alias_list}

    lifespan = model_lifespan(holder, lambda: load_engine(settings), settings.warmup, engine)

    app = create_app(
        title="vibevoice-api ASR service",
        service="asr",
        settings=settings,
        readiness=holder.readiness,
        lifespan=lifespan,
        admission=(
            settings.max_concurrency + settings.max_queue,
            ("/v1/audio/transcriptions", "/v1/audio/translations"),
        ),
        description="VibeVoice-ASR behind the OpenAI transcription API.",
    )
    app.state.holder = holder

    def update_gauges(eng: Any) -> None:
        try:
            stats = eng.stats()
        except Exception:  # noqa: BLE001 - metrics must never fail a request
            return
        QUEUE_DEPTH.set(stats.get("queue_depth", 0))

    async def handle(request: Request, task: str) -> Response:
        eng = holder.require()
        params = await parse_request(
            request,
            task,
            accepted,
            settings.asr_model_id,
            word_mode=settings.asr_word_timestamps,
            max_json_bytes=settings.max_upload_bytes,
        )
        try:
            started = time.perf_counter()
            with DECODE_SECONDS.time():
                audio = await asyncio.to_thread(
                    decode_audio,
                    params.audio,
                    eng.sample_rate,
                    raw=params.raw,
                    max_seconds=settings.asr_max_audio_seconds,
                )
        finally:
            params.close()
        duration = audio.shape[0] / eng.sample_rate
        kwargs = {"prompt": params.prompt, "language": params.language, "temperature": params.temperature, "task": task}
        if params.stream:
            return StreamingResponse(
                _sse(eng, audio, duration, params, kwargs, started),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
            )
        ACTIVE.inc()
        update_gauges(eng)
        try:
            segments = await until_disconnect(request, eng.transcribe(audio, **kwargs))
        finally:
            ACTIVE.dec()
            update_gauges(eng)
        _account(duration, started)
        segs = tx.normalize([tx.Seg(s.start, s.end, s.text, s.speaker) for s in segments], duration)
        return render(params, segs, duration, settings)

    async def _sse(
        eng: Any, audio: Any, duration: float, params: TranscriptionParams, kwargs: dict[str, Any], started: float
    ) -> AsyncIterator[bytes]:
        ACTIVE.inc()
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
                yield _event({"type": "transcript.text.delta", "delta": delta, "segment_id": seg_id})
                if params.response_format == "diarized_json":
                    yield _event(
                        {
                            "type": "transcript.text.segment",
                            "id": seg_id,
                            "start": round(s.start, 3),
                            "end": round(s.end, 3),
                            "text": s.text,
                            "speaker": tx.speaker_label(s.speaker, mapping),
                        }
                    )
                i += 1
            _account(duration, started)
            yield _event(
                {
                    "type": "transcript.text.done",
                    "text": " ".join(texts).strip(),
                    "usage": {"type": "duration", "seconds": round(duration, 3)},
                }
            )
        except Exception as exc:
            from vibevoice_api.shared.errors import APIError

            body = (
                exc.body()
                if isinstance(exc, APIError)
                else {
                    "error": {
                        "message": "Transcription failed.",
                        "type": "server_error",
                        "param": None,
                        "code": "internal_error",
                    }
                }
            )
            if not isinstance(exc, APIError):
                log.exception("streaming transcription failed")
            yield _event({"type": "error", **body})
        finally:
            ACTIVE.dec()
            await stream.aclose()

    responses = {**transcription_responses(), **ERROR_RESPONSES}

    @app.post(
        "/v1/audio/transcriptions",
        tags=["audio"],
        summary="Transcribe audio",
        openapi_extra=transcription_form(),
        responses=responses,
    )
    async def transcriptions(request: Request) -> Response:
        return await handle(request, "transcribe")

    @app.post(
        "/v1/audio/translations",
        tags=["audio"],
        summary="Translate audio into English",
        openapi_extra=transcription_form(translation=True),
        responses=responses,
    )
    async def translations(request: Request) -> Response:
        return await handle(request, "translate")

    install_model_routes(
        app,
        model_id=settings.asr_model_id,
        display_name="VibeVoice-ASR",
        aliases=settings.alias_list,
        title="vibevoice-api ASR service",
        holder=holder,
    )
    install_openapi(app)
    return app


def _event(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


def _account(duration: float, started: float) -> None:
    AUDIO_SECONDS.inc(duration)
    if duration > 0:
        RTF.observe((time.perf_counter() - started) / duration)


def render(params: TranscriptionParams, segs: list[tx.Seg], duration: float, settings: ASRSettings) -> Response:
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
