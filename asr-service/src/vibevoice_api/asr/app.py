"""The ASR service app: OpenAI ``/v1/audio/transcriptions`` and ``/translations`` on VibeVoice-ASR.

``build_app`` only wires: the shared app shell, the model holder (``app.state.holder``), the routes
in ``routes/`` and the shared discovery routes.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from fastapi import FastAPI
from vibevoice_api.shared.lifecycle import holder_readiness
from vibevoice_api.shared.model_app import Service, create_model_app

from . import metrics
from .routes import transcription
from .settings import ASRSettings

log = logging.getLogger("vibevoice_api.asr")

#: Transcriptions and translations are the paths bounded by max_concurrency + max_queue.
ASR = Service(
    "asr", "VibeVoice-ASR behind the OpenAI transcription API.", ("/v1/audio/transcriptions", "/v1/audio/translations")
)


def load_engine(settings: ASRSettings) -> Any:
    from vibevoice_api.shared.download import ensure_snapshot

    from .engine import ASREngine, EngineConfig

    ensure_snapshot(
        settings.asr_model_path, settings.asr_hf_repo, allow_download=settings.auto_download, what="VibeVoice-ASR"
    )
    cfg = settings.engine_config(EngineConfig, "asr_", model_dir=settings.asr_model_path)
    if settings.asr_backend == "vllm":
        from .engine.vllm_backend import connect

        backend = connect(
            settings.asr_model_path,
            settings.asr_vllm_url,
            settings.asr_vllm_model,
            workers=settings.asr_vllm_max_concurrency,
            api_key=settings.asr_vllm_api_key,
        )
        engine = ASREngine(cfg, backend=backend)
    else:
        engine = ASREngine.load(cfg)
    engine.on_batch = lambda n: metrics.BATCH_SIZE.observe(n)
    engine.on_loop = lambda retried: metrics.LOOPS.labels("retried" if retried else "cut").inc()
    load_side_models()
    return engine


def load_side_models() -> None:
    """The small models answers use (language id, voice activity, speaker encoder), loaded with the big one
    so that no request waits for them."""
    from . import language_id, no_speech, speakers

    language_id.identifier()
    no_speech.model()
    try:
        speakers.encoder()
    except speakers.EncoderUnavailableError as exc:
        log.warning("known speakers unavailable: %s", exc.message)


async def backend_readiness(app: Any) -> tuple[bool, dict[str, Any]]:
    """The holder's readiness, naming the backend; with vLLM also whether that server answers now."""
    import asyncio

    ok, details = holder_readiness(app)
    engine = app.state.holder.engine
    backend = getattr(engine, "backend", None)
    details["backend"] = getattr(backend, "name", app.state.settings.asr_backend)
    if ok and hasattr(backend, "health"):
        healthy, why = await asyncio.to_thread(backend.health)
        details["vllm"] = {"url": backend.url, "status": why}
        ok = ok and healthy
    return ok, details


def build_app(settings: ASRSettings | None = None, engine: Any = None) -> FastAPI:
    settings = settings or ASRSettings()
    if settings.tmp_dir is not None:
        import tempfile

        settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(settings.tmp_dir)  # where uploads are spooled
    load = partial(load_engine, settings)
    return create_model_app(ASR, settings, settings.identity, load, engine, [transcription.router], backend_readiness)
