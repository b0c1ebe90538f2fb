"""The TTS service app: OpenAI ``POST /v1/audio/speech`` (+ realtime WebSocket) on VibeVoice-Realtime."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response, StreamingResponse
from prometheus_client import Counter, Gauge, Histogram
from vibevoice_api.shared.app import create_app
from vibevoice_api.shared.audio import content_type
from vibevoice_api.shared.cancel import until_disconnect
from vibevoice_api.shared.discovery import check_model, install_model_routes
from vibevoice_api.shared.errors import APIError
from vibevoice_api.shared.lifecycle import ModelHolder, model_lifespan
from vibevoice_api.shared.openapi import AUDIO_RESPONSE, install_openapi
from vibevoice_api.shared.schemas import ERROR_RESPONSES, SpeechRequest, VoiceList

from .settings import TTSSettings
from .speech import SpeechJob, b64, check_text, choose_voice, encoded_chunks

log = logging.getLogger("vibevoice_api.tts")

FIRST_AUDIO = Histogram(
    "vibevoice_tts_time_to_first_audio_seconds",
    "Request start to first encoded audio bytes",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
)
RTF = Histogram(
    "vibevoice_tts_real_time_factor",
    "Generation time / audio duration per request",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5, 10),
)
ACTIVE = Gauge("vibevoice_tts_active_streams", "Speech streams being generated")
QUEUE_DEPTH = Gauge("vibevoice_tts_queue_depth", "Speech requests waiting for the engine")
CHARS = Counter("vibevoice_tts_input_characters_total", "Characters synthesized")
AUDIO_SECONDS = Counter("vibevoice_tts_audio_seconds_total", "Seconds of audio produced")


def load_engine(settings: TTSSettings) -> Any:
    from vibevoice_api.shared.download import TOKENIZER_FILES, ensure_snapshot

    from .engine import EngineConfig, TTSEngine

    path = settings.tts_model_path
    ensure_snapshot(path, settings.tts_hf_repo, allow_download=settings.auto_download, what="VibeVoice-Realtime-0.5B")
    if not any((d / f).is_file() for d in (path, path / "tokenizer") for f in ("tokenizer.json", "vocab.json")):
        ensure_snapshot(
            path / "tokenizer",
            settings.tts_tokenizer_repo,
            allow_download=settings.auto_download,
            what="Qwen2.5 tokenizer",
            patterns=TOKENIZER_FILES,
        )
    cfg = EngineConfig(
        model_dir=path,
        voices_dir=settings.voices_path,
        device=settings.device,
        dtype=None if settings.dtype == "auto" else settings.dtype,
        attn_implementation=settings.attn_implementation,
        max_concurrency=settings.max_concurrency,
        max_queue=settings.max_queue,
        cfg_scale=settings.tts_cfg_scale,
        ddpm_steps=settings.tts_steps,
        latents_per_token=settings.tts_latents_per_token,
        min_latents=settings.tts_min_latents,
        max_piece_tokens=settings.tts_max_piece_tokens,
    )
    return TTSEngine.load(cfg)


def build_app(settings: TTSSettings | None = None, engine: Any = None) -> FastAPI:
    settings = settings or TTSSettings()
    holder: ModelHolder[Any] = ModelHolder(settings.tts_model_id)

    lifespan = model_lifespan(holder, lambda: load_engine(settings), settings.warmup, engine)

    app = create_app(
        title="vibevoice-api TTS service",
        service="tts",
        settings=settings,
        readiness=holder.readiness,
        lifespan=lifespan,
        admission=(settings.max_concurrency + settings.max_queue, ("/v1/audio/speech",)),
        description="VibeVoice-Realtime-0.5B behind the OpenAI speech API, streaming.",
    )
    app.state.holder = holder

    def gauges(eng: Any) -> None:
        try:
            stats = eng.stats()
        except Exception:  # noqa: BLE001 - metrics never fail a request
            return
        QUEUE_DEPTH.set(stats.get("queue_depth", 0))

    @app.post(
        "/v1/audio/speech",
        tags=["audio"],
        summary="Create speech",
        responses={200: AUDIO_RESPONSE, **ERROR_RESPONSES},
    )
    async def speech(req: SpeechRequest, request: Request) -> Response:
        started = time.perf_counter()
        eng = holder.require()
        check_model(req.model, settings.tts_model_id, settings.alias_list)
        text = check_text(req.input, settings)
        job = SpeechJob(
            text=text,
            voice_id=choose_voice(eng, req.voice_name, settings),
            response_format=req.response_format,
            speed=req.speed,
        )
        chunks = encoded_chunks(eng, job)
        ACTIVE.inc()
        gauges(eng)
        try:
            # Wait for the first audio before sending headers: a busy engine or a bad voice file
            # still becomes a proper HTTP error, and the client's timer starts with real audio.
            first = await until_disconnect(request, chunks.__anext__())
        except StopAsyncIteration:
            first = b""
        except BaseException:
            ACTIVE.dec()
            await chunks.aclose()
            raise
        FIRST_AUDIO.observe(time.perf_counter() - started)
        CHARS.inc(len(text))
        if req.stream_format == "sse":
            body = _sse(first, chunks, started, text, eng, job)
            return StreamingResponse(body, media_type="text/event-stream", headers={"cache-control": "no-cache"})
        return StreamingResponse(
            _audio(first, chunks, started, eng, job),
            media_type=content_type(job.response_format, eng.sample_rate),
            headers={"x-vibevoice-voice": job.voice_id},
        )

    async def _audio(
        first: bytes, chunks: AsyncIterator[bytes], started: float, eng: Any, job: SpeechJob
    ) -> AsyncIterator[bytes]:
        produced = 0
        try:
            if first:
                yield first
            async for data in chunks:
                produced += len(data)
                yield data
            _account(started, eng, job)
        finally:
            ACTIVE.dec()
            gauges(eng)
            await chunks.aclose()  # type: ignore[attr-defined]

    async def _sse(
        first: bytes, chunks: AsyncIterator[bytes], started: float, text: str, eng: Any, job: SpeechJob
    ) -> AsyncIterator[bytes]:
        total = 0
        try:
            if first:
                total += len(first)
                yield _event({"type": "speech.audio.delta", "audio": b64(first)})
            async for data in chunks:
                total += len(data)
                yield _event({"type": "speech.audio.delta", "audio": b64(data)})
            seconds = _account(started, eng, job)
            out_tokens = int(round(seconds * 7.5))  # speech latents: 7.5 per second of audio
            in_tokens = _count_tokens(eng, text)
            yield _event(
                {
                    "type": "speech.audio.done",
                    "usage": {
                        "input_tokens": in_tokens,
                        "output_tokens": out_tokens,
                        "total_tokens": in_tokens + out_tokens,
                    },
                }
            )
        except APIError as exc:
            yield _event({"type": "error", **exc.body()})
        except Exception:
            log.exception("speech stream failed")
            yield _event(
                {
                    "type": "error",
                    "error": {
                        "message": "Speech generation failed.",
                        "type": "server_error",
                        "param": None,
                        "code": "internal_error",
                    },
                }
            )
        finally:
            ACTIVE.dec()
            gauges(eng)
            await chunks.aclose()  # type: ignore[attr-defined]

    def _account(started: float, eng: Any, job: SpeechJob) -> float:
        seconds = job.samples / eng.sample_rate
        if seconds:
            AUDIO_SECONDS.inc(seconds)
            RTF.observe((time.perf_counter() - started) / seconds)
        return seconds

    @app.get(
        "/v1/audio/voices", tags=["discovery"], response_model=VoiceList, summary="Voice presets (Open WebUI's shape)"
    )
    async def voices() -> dict[str, Any]:
        eng = holder.require()
        return {
            "voices": [
                {"id": v.id, "name": v.name, "language": v.language, "gender": v.gender} for v in eng.list_voices()
            ]
        }

    install_model_routes(
        app,
        model_id=settings.tts_model_id,
        display_name="VibeVoice-Realtime-0.5B",
        aliases=settings.alias_list,
        title="vibevoice-api TTS service",
        holder=holder,
    )

    if settings.tts_realtime_enabled:
        from .realtime import RealtimeSession

        @app.websocket("/v1/realtime")
        async def realtime(ws: WebSocket) -> None:
            await RealtimeSession(ws, holder, settings).run()

    install_openapi(app)
    return app


def _event(obj: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


def _count_tokens(eng: Any, text: str) -> int:
    counter = getattr(eng, "count_tokens", None)
    if callable(counter):
        try:
            return int(counter(text))
        except Exception:  # noqa: BLE001
            pass
    return len(text.split())
